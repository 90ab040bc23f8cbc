"""The checks on hand-made request logs: each passes on a good log and fails on a bad one."""

import itertools

import pytest

from hypothesis import given, settings
from hypothesis import strategies as st

from harness import checks, victims
from harness.history.timeline import FaultEvent, FaultKind
from harness.history.observations import Observation
from harness.history.requests import RequestRecord
from harness.saturation import capacity, scales

NODES = ["n1", "n2", "n3"]


def rec(t, node="n1", ok=True, endpoint="entry", key=None, redirects=(), error=None,
        detail=None, duration=0.01, protocol="http", operation="op"):
    return RequestRecord(protocol=protocol, operation=operation, endpoint=endpoint, url="u",
                         start_wall=t, start_mono=t, end_mono=t + duration, ok=ok,
                         status=200 if ok else 503, node=node, error=error,
                         redirects=list(redirects), key=key, detail=detail or {})


def fault(kind="kill", target="n3", start=10.0, end=12.0):
    node, _, link = target.partition("/")
    return FaultEvent(FaultKind(kind), node, link or None, start, start, end, end)


def round_robin(n, nodes=NODES, start=0.0, step=0.01):
    return [rec(start + i * step, node) for i, node in zip(range(n), itertools.cycle(nodes))]


# -- balance -----------------------------------------------------------------------------

def test_balance_passes_on_round_robin_and_fails_on_skew():
    assert checks.balance(round_robin(600), NODES).passed
    skewed = round_robin(600) + [rec(5 + i * 0.01, "n1") for i in range(300)]
    verdict = checks.balance(skewed, NODES)
    assert verdict.outcome == "violated" and "n1" in verdict.explanation
    assert verdict.figures["chi2_p_value"] < 0.001


def test_balance_fails_when_a_node_serves_nothing_and_honours_weights():
    assert checks.balance(round_robin(600, NODES[:2]), NODES).outcome == "violated"
    weighted = round_robin(1200, ["n1", "n1", "n2", "n3"])
    assert checks.balance(weighted, NODES, weights={"n1": 2}).passed
    assert checks.balance(weighted, NODES).outcome == "violated"


def test_balance_counts_the_balancers_unit_and_says_which():
    verdict = checks.balance(round_robin(600), NODES, unit="connection")
    assert verdict.passed and verdict.figures["unit"] == "connection"
    assert "per connection" in verdict.explanation


def test_balance_on_too_few_observations_is_inconclusive_not_a_false_alarm():
    # 4 keep-alive connections over 3 nodes: one node has two of them (the false alarm)
    lopsided = [rec(0, n) for n in ("n1", "n1", "n2", "n3")]
    verdict = checks.balance(lopsided, NODES, unit="connection")
    assert verdict.outcome == "inconclusive"
    assert "needs 148 per node" in verdict.explanation and "run at least 444" in verdict.explanation


def test_observations_needed_grows_as_the_tolerance_tightens():
    assert checks.observations_needed(3, 0.25, 0.001) == 148
    assert checks.observations_needed(3, 0.1, 0.001) > checks.observations_needed(3, 0.25, 0.001)
    assert checks.observations_needed(1, 0.25, 0.001) == 1


@given(per_node=st.integers(500, 3000), jitter=st.lists(st.floats(-0.05, 0.05), min_size=3, max_size=3))
def test_balance_accepts_any_split_within_five_percent(per_node, jitter):
    counts = [max(1, round(per_node * (1 + j))) for j in jitter]
    records = [rec(0, n) for n, c in zip(NODES, counts) for _ in range(c)]
    assert checks.balance(records, NODES, tolerance=0.25, alpha=1e-9).passed


@given(per_node=st.integers(150, 1000), factor=st.floats(1.5, 4.0))
def test_balance_rejects_a_skew_of_half_again_with_enough_requests(per_node, factor):
    records = [rec(0, "n1")] * round(per_node * factor) + [rec(0, "n2")] * per_node + \
              [rec(0, "n3")] * per_node
    assert checks.balance(records, NODES).outcome == "violated"


@given(counts=st.lists(st.integers(0, 147), min_size=3, max_size=3))
def test_balance_never_passes_below_the_observations_it_needs(counts):
    records = [rec(0, n) for n, c in zip(NODES, counts) for _ in range(c)]
    assert not checks.balance(records, NODES).passed


# -- failover ----------------------------------------------------------------------------

def steady(start=0.0, end=20.0, step=0.02, nodes=NODES):
    return [rec(start + i * step, node)
            for i, node in zip(range(int((end - start) / step)), itertools.cycle(nodes))]


def test_failover_passes_when_survivors_serve_everything():
    log = [r for r in steady() if not (10 <= r.start_mono <= 12 and r.node == "n3")]
    verdict = checks.failover(log, fault(), max_latency_s=1.0)
    assert verdict.passed, verdict.explanation
    assert verdict.figures["served_by_peers"] == 100 and verdict.figures["waited_for_victim"] == 0
    assert verdict.figures["failover_gap_s"] < 0.1
    assert verdict.figures["victim_requests_before"] == 16
    assert verdict.figures["errors_the_budget_catches"] == 2  # 1% of 150 requests, plus one
    assert not verdict.unchecked


def test_failover_fails_on_errors_in_the_window_and_on_a_long_gap():
    log = [r if not (10 <= r.start_mono <= 12 and r.node == "n3") else rec(r.start_mono, None, ok=False)
           for r in steady()]
    assert "failed during kill" in checks.failover(log, fault()).explanation
    stalled = [r if not 10 <= r.start_mono <= 14 else rec(r.start_mono, None, ok=False)
               for r in steady()]
    verdict = checks.failover(stalled, fault(), error_budget=1.0, max_gap_s=2.5)
    assert verdict.explanation.startswith("no request succeeded for 3.00 s")


def test_failover_fails_when_the_killed_node_answers_or_errors_come_after():
    assert "answered" in checks.failover(steady(), fault()).explanation
    late = [r for r in steady() if not (10 <= r.start_mono <= 12 and r.node == "n3")]
    late.append(rec(15, None, ok=False))
    assert "after the fault healed" in checks.failover(late, fault()).explanation


def test_failover_catches_requests_that_waited_for_a_paused_node():
    held = [rec(r.start_mono, "n3", duration=12.0 - r.start_mono) if 10 <= r.start_mono <= 12
            and r.node == "n3" else r for r in steady()]
    verdict = checks.failover(held, fault("pause"))
    assert verdict.outcome == "violated", verdict.explanation
    assert "were answered by n3 only after it came back, after up to 2.00 s (bound 1.5 s)" \
        in verdict.explanation
    assert verdict.figures["waited_for_victim"] == 34 and verdict.figures["longest_wait_s"] == 2.0
    assert verdict.unchecked == ("latency during the fault (no --max-failover-latency set)",)
    assert checks.failover(held, fault("pause"), max_wait_s=2.5).passed


def test_a_slow_answer_from_a_peer_is_failover_never_waiting():
    """A balancer that retries slowly: the victim's requests end on its peers after 1.8 s.
    Served by a peer, they failed over; their latency is a figure, judged only against a
    bound the user sets."""
    slow = [rec(r.start_mono, "n1", duration=1.8) if 10 <= r.start_mono <= 12 and r.node == "n3"
            else r for r in steady()]
    verdict = checks.failover(slow, fault())
    assert verdict.passed, verdict.explanation
    assert verdict.figures["served_by_peers"] > 0 and verdict.figures["waited_for_victim"] == 0
    assert verdict.figures["slowest_served_by_peer_s"] == 1.8
    bounded = checks.failover(slow, fault(), max_latency_s=1.5)
    assert bounded.outcome == "violated" and "took up to 1.80 s" in bounded.explanation
    assert "waited" not in bounded.explanation and not bounded.unchecked


@settings(max_examples=60)
@given(delay=st.floats(0.0, 5.0), to_peer=st.booleans(), bound=st.floats(0.5, 3.0))
def test_failover_says_waited_only_of_requests_the_victim_answered_after_it_came_back(delay, to_peer, bound):
    """Who served decides the words: a request a peer served, however late, is never said to
    have waited; one the victim answered after the fault is, and only past the bound is it a
    violation."""
    log = [r for r in steady() if not (10 <= r.start_mono <= 12 and r.node == "n3")]
    log.append(rec(11.0, "n1" if to_peer else "n3", duration=1.0 + delay))
    verdict = checks.failover(log, fault())
    waited = not to_peer
    assert verdict.figures["waited_for_victim"] == int(waited)
    late = waited and 1.0 + delay > 1.5
    assert (verdict.outcome == "violated") == late
    assert ("waited for it" in verdict.explanation) == (waited and (late or verdict.passed))
    strict = checks.failover(log, fault(), max_wait_s=bound)
    assert (strict.outcome == "violated") == (waited and 1.0 + delay > bound)


def test_failover_without_traffic_on_the_victim_is_inconclusive():
    starved = [r for r in steady(nodes=["n1", "n2"])]
    verdict = checks.failover(starved, fault())
    assert verdict.outcome == "inconclusive"
    assert "n3 served 0 requests" in verdict.explanation and "--victim busiest" in verdict.explanation
    thin = checks.failover([r for r in steady(0, 20, step=0.1) if not (r.node == "n3" and r.start_mono >= 10)],
                           fault(), min_window_requests=40)
    assert thin.outcome == "inconclusive" and "overlapped the fault window" in thin.explanation
    assert checks.failover(steady(0, 5), fault()).outcome == "inconclusive"


def test_served_lately_counts_the_nodes_answers_in_the_lookback_only():
    records = [rec(t / 10, node="n1" if t % 2 else "n2") for t in range(40)] + [rec(3.5, "n1", ok=False)]
    # answers ending in [3.0, 4.0): t = 2.91 ... 3.91, n1 on the odd tenths
    assert checks.served_lately(records, "n1", 4.0) == 5
    assert checks.served_lately(records, "n3", 4.0) == 0
    assert checks.served_lately(records, "n1", 4.0, lookback_s=0.25) == 1


def test_longest_gap_counts_the_edges():
    assert checks.longest_gap([rec(1.0), rec(2.0)], 0.0, 5.0) == 5.0 - 2.01


@settings(max_examples=60)
@given(step=st.floats(0.005, 0.5), victim_share=st.integers(0, 2),
       drop=st.booleans(), budget=st.floats(0.0, 0.2))
def test_failover_never_passes_when_the_victim_carried_no_traffic(step, victim_share, drop, budget):
    """The vacuous pass: a victim that served (almost) nothing before the fault."""
    nodes = ["n1", "n2"] + ["n3"] * victim_share
    log = [r for r in steady(step=step, nodes=nodes) if not (r.node == "n3" and r.start_mono < 10)]
    log = [r for r in log if not (drop and 10 <= r.start_mono <= 13)]
    assert not checks.failover(log, fault(), error_budget=budget).passed


@settings(max_examples=40)
@given(n=st.integers(0, 19))
def test_failover_never_passes_on_too_few_requests_in_the_window(n):
    before = [rec(9 + i * 0.05, node) for i, node in zip(range(18), itertools.cycle(NODES))]
    window = [rec(10 + i * 0.1, "n1") for i in range(n)]
    assert not checks.failover(before + window, fault()).passed


# -- no redirect -------------------------------------------------------------------------

def test_not_redirected_passes_when_the_failed_node_only_errors():
    log = [rec(11, None, ok=False, endpoint="n1", protocol="ftp"),
           rec(11.1, "n2", endpoint="n2", protocol="ftp"), rec(9, "n1", endpoint="n1")]
    assert checks.not_redirected(log, fault(target="n1"), prop="C6").passed


def test_not_redirected_fails_when_a_peer_answers_for_the_failed_node():
    log = [rec(11, "n2", endpoint="n1", protocol="ftp")]
    verdict = checks.not_redirected(log, fault(target="n1"), prop="C6")
    assert not verdict.passed and "answered by another node (n2)" in verdict.explanation


def test_not_redirected_fails_when_nothing_was_addressed_or_peers_fail():
    verdict = checks.not_redirected([rec(9, "n1", endpoint="n1")], fault(target="n1"))
    assert verdict.outcome == "inconclusive" and "nothing was addressed" in verdict.explanation
    log = [rec(11, None, ok=False, endpoint="n1"), rec(11, None, ok=False, endpoint="n2")]
    assert "other nodes failed" in checks.not_redirected(log, fault(target="n1")).explanation


def test_not_redirected_counts_what_was_addressed_while_down_even_if_it_errored_after():
    """A paused node: a session opened while it was down times out after the fault ended;
    a node restarted while the fault heals serves again before the fault's end: neither is a
    redirect, and the first is evidence."""
    pause = FaultEvent(FaultKind.PAUSE, "n1", None, 10.0, 10.0, 12.0, 12.0, applied_mono=10.1,
                       healing_mono=11.5)
    timed_out = rec(11, None, ok=False, endpoint="n1", protocol="ftp", duration=5.0)
    assert checks.not_redirected([timed_out], pause, prop="C6").passed
    back = rec(11.6, "n1", endpoint="n1", protocol="ftp", duration=0.1)
    assert checks.not_redirected([timed_out, back], pause, prop="C6").passed
    served_while_down = rec(10.5, "n1", endpoint="n1", protocol="ftp", duration=0.1)
    assert "succeeded while it was down" in checks.not_redirected(
        [served_while_down], pause, prop="C6").explanation


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
    assert checks.rejoined(steady(12, 20, step=0.01), "n3", 12.0, 2.0, NODES).passed
    without = checks.rejoined(steady(12, 20, nodes=["n1", "n2"]), "n3", 12.0, 2.0, NODES)
    assert "n3 never came back" in without.explanation
    assert without.figures["failed_part"] == "never came back"


def test_rejoined_says_which_part_failed():
    late = [r for r in steady(12, 20, step=0.01) if not (r.node == "n3" and r.start_mono < 16)]
    verdict = checks.rejoined(late, "n3", 12.0, 2.0, NODES)
    assert verdict.figures["failed_part"] == "came back late" and "came back late" in verdict.explanation
    unfair = [r for r in steady(12, 20, step=0.01) if not (r.node == "n3" and r.start_mono > 12.5)]
    unfair += [rec(12.4, "n3")]
    verdict = checks.rejoined(unfair, "n3", 12.0, 2.0, NODES)
    assert verdict.outcome == "violated" and "split afterwards was unfair" in verdict.explanation


def test_a_flap_while_starting_is_a_figure_not_an_unfair_split():
    """The Java server of a user's cluster: 4 answers, 2.5 s out of rotation while it
    started, then exactly its share. The split counts from the moment it is stably back."""
    flapping = [r for r in steady(12, 22, step=0.01)
                if not (r.node == "n3" and 12.2 <= r.start_mono < 14.7)]
    flapping = [r for r in flapping if not (r.node == "n3" and r.start_mono < 12.2)] + \
        [rec(12.0 + i * 0.03, "n3") for i in range(4)]
    verdict = checks.rejoined(flapping, "n3", 12.0, 5.0, NODES)
    assert verdict.passed, verdict.explanation
    assert verdict.figures["flaps_while_starting"] == 1 and 2.4 < verdict.figures["flap_s"] < 2.7
    assert "dropped out 1 time(s)" in verdict.explanation
    assert 2.7 <= verdict.figures["stably_back_s"] <= 2.75  # n3's first answer from 14.7 s


def test_the_rejoin_load_may_stop_once_the_verdict_has_its_evidence():
    fair = steady(12, 22, step=0.01)
    assert not checks.rejoin_judgeable(fair[:100], "n3", 12.0, 5.0, NODES)
    assert checks.rejoin_judgeable([r for r in fair if r.start_mono < 17.2], "n3", 12.0, 5.0, NODES)
    never = [r for r in fair if r.node != "n3"]
    assert not checks.rejoin_judgeable([r for r in never if r.start_mono < 17.5], "n3", 12.0, 5.0, NODES)
    assert checks.rejoin_judgeable(never, "n3", 12.0, 5.0, NODES)


@settings(max_examples=40)
@given(out_s=st.floats(1.2, 4.0), answers=st.integers(1, 10))
def test_a_node_stably_back_with_its_share_passes_however_it_flapped(out_s, answers):
    first = [rec(12.0 + i * 0.03, "n3") for i in range(answers)]
    rest = [r for r in steady(12, 30, step=0.01)
            if r.node != "n3" or r.start_mono >= 12.0 + answers * 0.03 + out_s]
    verdict = checks.rejoined(first + rest, "n3", 12.0, 10.0, NODES)
    assert verdict.passed, verdict.explanation
    assert verdict.figures["flaps_while_starting"] == 1


@settings(max_examples=40)
@given(after=st.floats(0.0, 1.9))
def test_rejoined_never_passes_without_traffic_after_the_restart(after):
    log = steady(0, 12) + steady(12, 12 + after)
    assert not checks.rejoined(log, "n3", 12.0, 2.0, NODES).passed


def test_state_continuity():
    good = [(rec(0, "n2", key="k"), "v")]
    assert checks.state_continuity(good, {"k": "v"}).passed
    assert checks.state_continuity([(rec(0, "n2", key="k"), "w")], {"k": "v"}).outcome == "violated"
    lost = [(rec(0, "n2", ok=False, key="k"), None)]
    assert not checks.state_continuity(lost, {"k": "v"}).passed


def test_session_continuity():
    good = [(rec(i, NODES[i % 3], key="s"), i + 1) for i in range(6)]
    assert checks.session_continuity(good).passed
    one_node = [(rec(i, "n1", key="s"), i + 1) for i in range(6)]
    assert checks.session_continuity(one_node).outcome == "inconclusive"
    reset = [(rec(i, NODES[i % 3], key="s"), c) for i, c in enumerate([1, 2, 1])]
    assert "lost state" in checks.session_continuity(reset).explanation


def test_exactly_once():
    acked = [rec(0, key="a"), rec(1, key="b"), rec(2, ok=False, key="c")]
    audit = [{"kind": "order", "key": "a"}, {"kind": "order", "key": "b"}]
    assert checks.exactly_once(acked, audit, "order").passed
    assert "more than once" in checks.exactly_once(acked, audit + audit[:1], "order").explanation
    assert "missing" in checks.exactly_once(acked, audit[:1], "order").explanation
    assert checks.exactly_once([rec(0, ok=False, key="c")], audit, "order").outcome == "inconclusive"


# -- packages, pools, scale --------------------------------------------------------------

def test_identical_names_the_odd_node():
    m = {"packages": {"A": "1"}, "server_version": "10"}
    assert checks.identical({"n1": m, "n2": m}).passed
    odd = {"n1": m, "n2": m, "n3": {**m, "packages": {}}}
    assert checks.identical(odd).explanation == "packages.A differs: '1' on n1, n2 / absent on n3"


def test_identical_names_every_nodes_value_of_each_differing_field():
    base = {"server_version": "10.15", "packages": {"orders": "2.1.0"}, "connections": ["a"]}
    manifests = {"n1": {**base, "connections": ["a", "b"]}, "n2": base,
                 "n3": {**base, "server_version": "10.11", "packages": {"orders": "2.0.3"}},
                 "n4": {k: v for k, v in base.items() if k != "server_version"}}
    verdict = checks.identical(manifests)
    assert verdict.explanation.split("; ") == [
        "connections has 'b' only on n1",
        "packages.orders differs: '2.1.0' on n1, n2, n4 / '2.0.3' on n3",
        "server_version differs: '10.15' on n1, n2 / '10.11' on n3 / absent on n4"]
    assert verdict.figures["differing_fields"] == "connections,packages,server_version"


def seen(what, readings, sample=0):
    """Observations of `what`: (node, value, at) each; value "refused" for a failed reading."""
    return [Observation(what, n, None if v == "refused" else v, at, sample,
                        "refused" if v == "refused" else None) for n, v, at in readings]


def test_replicated_within_judges_the_versions_each_node_reported():
    reports = seen("version", [("n1", "1.0", 10.0), ("n1", "1.1", 10.1), ("n2", "1.0", 10.2),
                               ("n2", "1.1", 10.5)])
    verdict = checks.replicated_within(reports, ["n1", "n2"], "1.1", 10.0, 1.0)
    assert verdict.passed and verdict.figures["slowest_s"] == 0.5
    never = checks.replicated_within(reports[:3], ["n1", "n2"], "1.1", 10.0, 1.0)
    assert "n2 never received it" in never.explanation


def test_pool_bounds_from_rounds_of_readings():
    def rounds(*samples):
        return [o for i, s in enumerate(samples) for o in seen("c", [(n, v, i) for n, v in s.items()], i)]

    assert checks.pool_bounds(rounds({"n1": 4, "n2": 4}), 4, 64).passed
    assert "held up to 9" in checks.pool_bounds(rounds({"n1": 9, "n2": 4}), 4, 64).explanation
    assert "exceeds the back end's limit" in checks.pool_bounds(rounds({"n1": 4, "n2": 4}), 4, 7).explanation
    refused = checks.pool_bounds(rounds({"n1": 4}, {"n1": "refused"}), 4, 64)
    assert "refused 1 connection counts" in refused.explanation
    assert checks.pool_bounds(rounds({"n1": 4, "n2": 3}, {"n1": 4, "n2": 4}), 4, 64).figures["peak_total"] == 8


def test_a_killed_nodes_pool_from_the_counts_read_while_down_and_after():
    kill = FaultEvent(FaultKind.KILL, "n1", None, 10.0, 10.0, 12.0, 13.0, applied_mono=10.1,
                      healing_mono=12.0)
    released = seen("c", [("n1", 4, 9.0), ("n1", 2, 10.5), ("n1", 0, 11.0), ("n1", 4, 14.0)])
    assert checks.pool_released_and_refilled(released, kill, 4).passed
    held = seen("c", [("n1", 2, 11.0), ("n1", 4, 14.0)])
    assert "still held 2 connections" in checks.pool_released_and_refilled(held, kill, 4).explanation
    empty = seen("c", [("n1", 0, 11.0), ("n1", 1, 14.0)])
    assert "holds 1 connections after restart" in checks.pool_released_and_refilled(empty, kill, 4).explanation
    unread = checks.pool_released_and_refilled(seen("c", [("n1", 0, 11.0)]), kill, 4)
    assert unread.outcome == "inconclusive" and "after its restart" in unread.explanation


@pytest.mark.parametrize("verdict", [
    checks.not_redirected([], fault(target="n1")),
    checks.redirected([], ["n1"], ["n2"]),
    checks.runs_where_addressed([]),
    checks.state_continuity([], {"k": "v"}),
    checks.session_continuity([]),
    checks.exactly_once([], [], "mail"),
    checks.identical({"n1": {"a": 1}}),
    checks.replicated_within([], ["n1"], "1", 0.0, 1.0),
    checks.pool_bounds([], 4, 64),
    checks.rejoined([], "n1", 0.0, 1.0, NODES),
    checks.balance([], NODES),
    checks.failover([], fault()),
    scales(capacity([]), capacity([]), [], "n3", 2, 1.2),
], ids=lambda v: v.title)
def test_no_check_passes_on_no_evidence(verdict):
    assert verdict.outcome == "inconclusive", verdict
    assert "to get it:" in verdict.explanation or "cannot be judged" in verdict.explanation


@settings(max_examples=50)
@given(st.lists(st.floats(0, 100), min_size=1, max_size=50))
def test_longest_gap_is_never_negative_and_spans_at_most_the_window(ends):
    records = [rec(e, duration=0) for e in ends]
    gap = checks.longest_gap(records, 0.0, 100.0)
    assert 0.0 <= gap <= 100.0


# -- the victim of a fault ---------------------------------------------------------------

@given(st.lists(st.tuples(st.sampled_from(NODES + ["elsewhere"]), st.booleans(),
                          st.sampled_from(["entry", "n1"])), max_size=30))
def test_the_busiest_node_is_the_one_most_answers_through_the_entry_came_from(served):
    records = [rec(i, node, ok, endpoint) for i, (node, ok, endpoint) in enumerate(served)]
    counted = [node for node, ok, endpoint in served if ok and endpoint == "entry" and node in NODES]
    picked = victims.busiest(records, NODES)
    if not counted:  # nothing through the entry answered: no guess, the caller waits
        assert picked is None
    else:
        assert picked is not None and counted.count(picked[0]) == max(map(counted.count, NODES))
        assert picked[1].endswith(f"of {len(counted)} requests")


NODE_SEQ = st.lists(st.sampled_from(NODES), min_size=1, max_size=8)


@given(NODE_SEQ, NODE_SEQ)
def test_the_balancing_unit_is_requests_only_where_one_connection_saw_several_nodes(kept, fresh):
    """One rule for `harness init` and the scenarios: None (unknown) only where one node
    answered everything."""
    unit, how = victims.balancing_unit(kept, fresh)
    assert unit == ("request" if len(set(kept)) > 1 else "connection" if len(set(fresh)) > 1 else None)
    assert how
