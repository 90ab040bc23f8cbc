"""The checks on hand-made request logs: each passes on a good log and fails on a bad one."""

import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from harness import checks
from harness.faults import FaultEvent
from harness.traffic.log import RequestRecord

NODES = ["n1", "n2", "n3"]


def rec(t, node="n1", ok=True, endpoint="entry", key=None, redirects=(), error=None,
        detail=None, duration=0.01, protocol="http", operation="op"):
    return RequestRecord(protocol=protocol, operation=operation, endpoint=endpoint, url="u",
                         start_wall=t, start_mono=t, end_mono=t + duration, ok=ok,
                         status=200 if ok else 503, node=node, error=error,
                         redirects=list(redirects), key=key, detail=detail or {})


def fault(kind="kill", target="n3", start=10.0, end=12.0):
    return FaultEvent(kind, target, start, start, end, end)


def round_robin(n, nodes=NODES, start=0.0, step=0.01):
    return [rec(start + i * step, node) for i, node in zip(range(n), itertools.cycle(nodes))]


# -- balance -----------------------------------------------------------------------------

def test_balance_passes_on_round_robin_and_fails_on_skew():
    assert checks.balance(round_robin(300), NODES).passed
    skewed = round_robin(200) + [rec(5 + i * 0.01, "n1") for i in range(150)]
    verdict = checks.balance(skewed, NODES)
    assert not verdict.passed and "n1" in verdict.explanation
    assert verdict.figures["chi2_p_value"] < 0.001


def test_balance_fails_when_a_node_serves_nothing_and_honours_weights():
    assert not checks.balance(round_robin(300, NODES[:2]), NODES).passed
    weighted = round_robin(300, ["n1", "n1", "n2", "n3"])
    assert checks.balance(weighted, NODES, weights={"n1": 2}).passed
    assert not checks.balance(weighted, NODES).passed


@given(per_node=st.integers(100, 2000), jitter=st.lists(st.floats(-0.05, 0.05), min_size=3, max_size=3))
def test_balance_accepts_any_split_within_five_percent(per_node, jitter):
    counts = [max(1, round(per_node * (1 + j))) for j in jitter]
    records = [rec(0, n) for n, c in zip(NODES, counts) for _ in range(c)]
    assert checks.balance(records, NODES, tolerance=0.25, alpha=1e-9).passed


@given(per_node=st.integers(100, 1000), factor=st.floats(1.5, 4.0))
def test_balance_rejects_a_skew_of_half_again_with_enough_requests(per_node, factor):
    records = [rec(0, "n1")] * round(per_node * factor) + [rec(0, "n2")] * per_node + \
              [rec(0, "n3")] * per_node
    assert not checks.balance(records, NODES).passed


# -- failover ----------------------------------------------------------------------------

def steady(start=0.0, end=20.0, step=0.02, nodes=NODES):
    return [rec(start + i * step, node)
            for i, node in zip(range(int((end - start) / step)), itertools.cycle(nodes))]


def test_failover_passes_when_survivors_serve_everything():
    log = [r for r in steady() if not (10 <= r.start_mono <= 12 and r.node == "n3")]
    verdict = checks.failover(log, fault())
    assert verdict.passed, verdict.explanation
    assert verdict.figures["failover_gap_s"] < 0.1


def test_failover_fails_on_errors_in_the_window_and_on_a_long_gap():
    log = [r if not (10 <= r.start_mono <= 12 and r.node == "n3") else rec(r.start_mono, None, ok=False)
           for r in steady()]
    assert "failed during kill" in checks.failover(log, fault()).explanation
    stalled = [r if not 10 <= r.start_mono <= 14 else rec(r.start_mono, None, ok=False)
               for r in steady()]
    verdict = checks.failover(stalled, fault(), error_budget=1.0, max_gap_s=2.5)
    assert verdict.explanation.startswith("no request succeeded for 3.00 s")
    assert "no request overlapped" in checks.failover(steady(0, 5), fault()).explanation


def test_failover_fails_when_the_killed_node_answers_or_errors_come_after():
    assert "answered" in checks.failover(steady(), fault()).explanation
    late = [r for r in steady() if not (10 <= r.start_mono <= 12 and r.node == "n3")]
    late.append(rec(15, None, ok=False))
    assert "after the fault healed" in checks.failover(late, fault()).explanation


def test_longest_gap_counts_the_edges():
    assert checks.longest_gap([rec(1.0), rec(2.0)], 0.0, 5.0) == 5.0 - 2.01


# -- no redirect -------------------------------------------------------------------------

def test_not_redirected_passes_when_the_failed_node_only_errors():
    log = [rec(11, None, ok=False, endpoint="n1", protocol="ftp"),
           rec(11.1, "n2", endpoint="n2", protocol="ftp"), rec(9, "n1", endpoint="n1")]
    assert checks.not_redirected(log, "n1", fault(target="n1"), prop="C6").passed


def test_not_redirected_fails_when_a_peer_answers_for_the_failed_node():
    log = [rec(11, "n2", endpoint="n1", protocol="ftp")]
    verdict = checks.not_redirected(log, "n1", fault(target="n1"), prop="C6")
    assert not verdict.passed and "answered by another node (n2)" in verdict.explanation


def test_not_redirected_fails_when_nothing_was_addressed_or_peers_fail():
    assert not checks.not_redirected([], "n1", fault(target="n1")).passed
    log = [rec(11, None, ok=False, endpoint="n1"), rec(11, None, ok=False, endpoint="n2")]
    assert "other nodes failed" in checks.not_redirected(log, "n1", fault(target="n1")).explanation


# -- redirect and admin ------------------------------------------------------------------

def test_redirected_passes_on_one_hop_to_a_capable_node():
    log = [rec(0, "n3", endpoint=n, redirects=[n]) for n in ("n1", "n2")]
    assert checks.redirected(log, ["n1", "n2"], ["n3"]).passed


def test_redirected_fails_on_loops_extra_hops_and_no_redirect():
    loop = rec(0, "n1", ok=False, endpoint="n1", redirects=["n1", "n2", "n1"], error="redirect loop through n1 -> n2")
    assert "loop" in checks.redirected([loop], ["n1", "n2"], ["n3"]).explanation
    two_hops = rec(0, "n3", endpoint="n1", redirects=["n1", "n2"])
    assert "2 redirect hops" in checks.redirected([two_hops], ["n1", "n2"], ["n3"]).explanation
    served_in_place = rec(0, "n1", endpoint="n1")
    assert not checks.redirected([served_in_place], ["n1"], ["n3"]).passed


def test_admin_calls_must_stay_on_the_node_addressed():
    assert checks.runs_where_addressed([rec(0, "n1", endpoint="n1")]).passed
    moved = rec(0, "n2", endpoint="n1", redirects=["n1"])
    assert "ran on n2" in checks.runs_where_addressed([moved]).explanation


# -- rejoin, state, exactly once ---------------------------------------------------------

def test_rejoined_passes_when_the_node_serves_soon_and_fails_when_it_never_does():
    assert checks.rejoined(steady(12, 20), "n3", 12.0, 2.0, NODES).passed
    without = steady(12, 20, nodes=["n1", "n2"])
    assert "served nothing" in checks.rejoined(without, "n3", 12.0, 2.0, NODES).explanation


def test_state_continuity():
    good = [rec(0, "n2", key="k", detail={"value": "v"})]
    assert checks.state_continuity(good, {"k": "v"}).passed
    lost = [rec(0, "n2", ok=False, key="k")]
    assert not checks.state_continuity(lost, {"k": "v"}).passed


def test_session_continuity():
    good = [rec(i, NODES[i % 3], key="s", detail={"count": i + 1}) for i in range(6)]
    assert checks.session_continuity(good).passed
    reset = [rec(i, NODES[i % 3], key="s", detail={"count": c}) for i, c in enumerate([1, 2, 1])]
    assert "lost state" in checks.session_continuity(reset).explanation


def test_exactly_once():
    acked = [rec(0, key="a"), rec(1, key="b"), rec(2, ok=False, key="c")]
    audit = [{"kind": "order", "key": "a"}, {"kind": "order", "key": "b"}]
    assert checks.exactly_once(acked, audit, "order").passed
    assert "more than once" in checks.exactly_once(acked, audit + audit[:1], "order").explanation
    assert "missing" in checks.exactly_once(acked, audit[:1], "order").explanation


# -- packages, pools, scale --------------------------------------------------------------

def test_identical_names_the_odd_node():
    m = {"packages": {"A": "1"}, "server_version": "10"}
    assert checks.identical({"n1": m, "n2": m}).passed
    odd = {"n1": m, "n2": m, "n3": {**m, "packages": {}}}
    assert checks.identical(odd).explanation == "packages differs on n3"


def test_replicated_within():
    assert checks.replicated_within({"n1": 0.1, "n2": 0.5}, 1.0).passed
    assert "n2 never received it" in checks.replicated_within({"n1": 0.1, "n2": None}, 1.0).explanation


def test_pool_bounds():
    assert checks.pool_bounds([{"n1": 4, "n2": 4}], 4, 64).passed
    assert "held up to 9" in checks.pool_bounds([{"n1": 9, "n2": 4}], 4, 64).explanation
    assert "exceeds the back end's limit" in checks.pool_bounds([{"n1": 4, "n2": 4}], 4, 7).explanation
    assert "refused" in checks.pool_bounds([{"n1": 4}], 4, 64, refused=1).explanation
    assert checks.pool_released_and_refilled("n1", 0, 4, 4).passed
    assert not checks.pool_released_and_refilled("n1", 2, 4, 4).passed


def test_scales():
    assert checks.scales(100, 150, 1.2, 0.33, 1 / 3).passed
    assert not checks.scales(100, 101, 1.2, 0.0, 1 / 3).passed


@settings(max_examples=50)
@given(st.lists(st.floats(0, 100), min_size=1, max_size=50))
def test_longest_gap_is_never_negative_and_spans_at_most_the_window(ends):
    records = [rec(e, duration=0) for e in ends]
    gap = checks.longest_gap(records, 0.0, 100.0)
    assert 0.0 <= gap <= 100.0
