"""The checkers: pure functions of the history (request log, fault timeline, observations) -> Verdict.

Nothing here talks to a cluster, so every check is unit- and property-tested on hand-made
logs (tests/test_checks.py). Each check names the evidence it needs: without it the verdict
is inconclusive (never a pass), saying what was missing and how to get it. Each verdict
carries the figures a reader needs to judge it, including how sensitive it was (requests in
the window, the fewest errors the budget would have caught).
"""

from __future__ import annotations

import bisect
import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, fields

from scipy.stats import chi2, chisquare

from harness.config import BalancingUnit
from harness.history.timeline import FaultEvent
from harness.history.observations import Observation
from harness.history.requests import ENTRY, RequestRecord
from harness.properties import Property
from harness.verdict import Figures, Missing, Verdict, decide, inconclusive

# -- C1 balance ------------------------------------------------------------------------------

def observations_needed(nodes: int, tolerance: float, alpha: float) -> int:
    """Observations per node for the split to be judged: enough that a node off its fair share
    by exactly `tolerance` is significant at `alpha`, so chance alone rarely crosses the
    tolerance (a false alarm) and a real skew of that size is seen.

    One node off by t, the others making up for it evenly, gives chi-square = E t^2 k/(k-1)
    for E expected per node and k nodes; never fewer than the 5 per cell chi-square needs.
    """
    if nodes < 2:
        return 1
    critical = float(chi2.ppf(1 - alpha, nodes - 1))
    return max(5, math.ceil(critical * (nodes - 1) / (nodes * tolerance ** 2)))


def served(records: Iterable[RequestRecord], nodes: Iterable[str]) -> Counter[str]:
    """Successful answers per node, of `nodes`: what the balance check weighs (and what a load
    that runs until it has enough counts)."""
    of = set(nodes)
    return Counter(r.node for r in records if r.ok and r.node in of)


def balance(records: Iterable[RequestRecord], nodes: Sequence[str],
            weights: Mapping[str, float] | None = None, tolerance: float = 0.25,
            alpha: float = 0.001, unit: BalancingUnit = "request", prop: Property = Property.C1) -> Verdict:
    """Successful answers spread over `nodes` in proportion to `weights` (default equal).

    Each record is one observation at the balancer's `unit`: for a connection balancer the
    traffic opens a fresh connection per request, so records count connections. Passes when
    every node's share is within `tolerance` (relative) of its fair share and a chi-square
    test does not reject the fair split at `alpha`; inconclusive below `observations_needed`.
    """
    answers = served(records, nodes)
    total = sum(answers.values())
    w = {n: (weights or {}).get(n, 1.0) for n in nodes}
    expected = {n: total * w[n] / sum(w.values()) for n in nodes}
    needed = observations_needed(len(nodes), tolerance, alpha)
    figures: Figures = {"unit": unit, f"{unit}s": total, f"{unit}s_needed_per_node": needed}
    figures.update({f"served_{n}": answers[n] for n in nodes})
    thinnest = min(expected.values(), default=0.0)
    if thinnest < needed:
        share = min(w.values()) / sum(w.values()) if nodes else 1.0
        return inconclusive(prop, "balance", [Missing(
            f"{total} {unit}s were served, {thinnest:.0f} expected of the least-weighted node; "
            f"judging a split within {tolerance:.0%} at significance {alpha} needs {needed} per node",
            f"run at least {math.ceil(needed / share)} {unit}s (more users, rate or seconds)")],
            figures)
    deviation = {n: abs(answers[n] - expected[n]) / expected[n] for n in nodes}
    worst = max(deviation, key=deviation.__getitem__)
    p_value = float(chisquare([answers[n] for n in nodes], [expected[n] for n in nodes]).pvalue) \
        if len(nodes) > 1 else 1.0
    figures.update({"max_relative_deviation": round(deviation[worst], 4),
                    "chi2_p_value": p_value, "tolerance": tolerance, "alpha": alpha})
    problems = []
    if deviation[worst] > tolerance:
        problems.append(f"{worst} served {answers[worst]} of {total} {unit}s, "
                        f"{deviation[worst]:.0%} off its fair share {expected[worst]:.0f}")
    if p_value < alpha:
        problems.append(f"the split of {unit}s is unfair at significance {alpha} (p = {p_value:.2g})")
    return decide(prop, "balance", problems, [],
                  f"{total} {unit}s within {deviation[worst]:.0%} of fair shares "
                  f"(p = {p_value:.2g}), balanced per {unit}", figures)


# -- C2/C3/C4 failover -----------------------------------------------------------------------

def largest_gap(times: Iterable[float], start: float, end: float) -> float:
    """Longest time within [start, end] holding none of `times`."""
    marks = [start, *sorted(t for t in times if start <= t <= end), end]
    return max(b - a for a, b in zip(marks, marks[1:]))


def longest_gap(records: Iterable[RequestRecord], start: float, end: float) -> float:
    """Longest time within [start, end] in which no request completed successfully."""
    return largest_gap((r.end_mono for r in records if r.ok), start, end)


def quantile(values: Sequence[float], q: float) -> float:
    """The q-quantile by the nearest-rank method (0 for no values)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def errors_caught_at(requests: int, error_budget: float) -> int:
    """The fewest failed requests, among `requests`, that exceed the error budget."""
    return math.floor(error_budget * requests) + 1


FAILOVER_SETTLE_S = 1.0  # a fault's window runs on this long after it healed
CLOCK_RESOLUTION_S = 0.02
"""the largest error in a request's time the checks against the fault timeline tolerate (a
request from a load worker on another machine, placed by its measured clock offset): the
victim's last answer before a fault and a request in flight across it are told apart by
more than this"""
VICTIM_LOOKBACK_S = 1.0  # the victim's traffic is counted this long before the fault


@dataclass(frozen=True)
class WhoServed:
    """What happened to the requests that overlapped a fault, by who served each (from the
    request log alone): failed; served by a peer (failed over, however slowly); served by the
    victim before the fault took hold, while it was in force, or after it healed; or *waited*:
    in flight while the fault was in force, and answered by the victim only after it came
    back."""

    failed: list[RequestRecord]
    by_peers: list[RequestRecord]
    victim_before: list[RequestRecord]
    victim_during: list[RequestRecord]
    waited: list[RequestRecord]
    victim_after: list[RequestRecord]

    @classmethod
    def sort(cls, records: Iterable[RequestRecord], victim: str, applied: float,
             healing: float) -> "WhoServed":
        groups: dict[str, list[RequestRecord]] = {f.name: [] for f in fields(cls)}
        for r in records:
            if not r.ok:
                group = "failed"
            elif r.node != victim:
                group = "by_peers"
            elif r.end_mono <= applied:
                group = "victim_before"
            elif r.end_mono < healing:
                group = "victim_during"
            elif r.start_mono < healing:
                group = "waited"
            else:
                group = "victim_after"
            groups[group].append(r)
        return cls(**groups)


def served_lately(records: Iterable[RequestRecord], node: str, until_mono: float,
                  lookback_s: float = VICTIM_LOOKBACK_S) -> int:
    """How many requests `node` answered in the `lookback_s` before `until_mono`: a victim's
    traffic before its fault, the evidence that its failure had something to fail over."""
    return sum(1 for r in records if r.ok and r.node == node
               and until_mono - lookback_s <= r.end_mono < until_mono)


def failover(records: Iterable[RequestRecord], fault: FaultEvent, error_budget: float = 0.01,
             max_gap_s: float = 3.0, max_wait_s: float = 1.5, max_latency_s: float | None = None,
             settle_s: float = FAILOVER_SETTLE_S, min_victim_requests: int = 3, lookback_s: float = VICTIM_LOOKBACK_S,
             min_window_requests: int = 20, prop: Property = Property.C2) -> Verdict:
    """Requests through the entry keep succeeding while one node is down: served by its peers.

    Judged by who served each request that overlapped the fault window (the fault's start to
    its end plus `settle_s`; see `WhoServed`). A request served by a peer failed over, however
    slowly: never a violation for its latency. Violated when the window's error rate exceeds
    `error_budget`, when no request succeeded for longer than `max_gap_s`, when a request
    waited for the victim to come back longer than `max_wait_s` (a balancer holding requests
    on a paused node), when anything failed after the window, or when a node the fault made
    unreachable answered while it was. Latency is a figure in every verdict, judged only
    against `max_latency_s` when the user sets one.

    Evidence: the victim served at least `min_victim_requests` through the entry in the
    `lookback_s` before the fault (else its failure had nothing to fail over), and at least
    `min_window_requests` overlapped the window.
    """
    assert fault.end_mono is not None, "the fault must be healed before it is judged"
    rs = [r for r in records if r.endpoint == ENTRY]
    end = fault.end_mono + settle_s
    inside = [r for r in rs if r.end_mono >= fault.start_mono and r.start_mono <= end]
    after = [r for r in rs if r.start_mono > end]
    errors_after = sum(not r.ok for r in after)
    node = fault.node
    before = served_lately(rs, node, fault.start_mono, lookback_s)
    applied, healing = fault.in_force
    who = WhoServed.sort(inside, node, applied, healing)
    from_dead = [r for r in who.victim_during if fault.unreachable and r.start_mono > applied]
    long_waits = [r for r in who.waited if r.duration > max_wait_s]
    errors_in = len(who.failed)
    rate = errors_in / len(inside) if inside else 0.0
    gap = longest_gap(rs, fault.start_mono, end)
    latencies = [r.duration for r in inside]
    p99, slowest = quantile(latencies, 0.99), max(latencies, default=0.0)
    longest_wait = max((r.duration for r in who.waited), default=0.0)
    figures: Figures = {"victim_requests_before": before, "requests_in_window": len(inside),
                        "served_by_peers": len(who.by_peers),
                        "served_by_victim_before_fault": len(who.victim_before),
                        "served_by_victim_during_fault": len(who.victim_during),
                        "waited_for_victim": len(who.waited),
                        "served_by_victim_after_fault": len(who.victim_after),
                        "errors_in_window": errors_in, "error_rate_in_window": round(rate, 4),
                        "error_budget": error_budget,
                        "errors_the_budget_catches": errors_caught_at(len(inside), error_budget),
                        "failover_gap_s": round(gap, 3), "max_gap_s": max_gap_s,
                        "longest_wait_s": round(longest_wait, 3), "max_wait_s": max_wait_s,
                        "slowest_served_by_peer_s": round(max((r.duration for r in who.by_peers),
                                                              default=0.0), 3),
                        "latency_p99_s": round(p99, 3), "latency_max_s": round(slowest, 3),
                        "errors_after_window": errors_after, "answers_from_faulted": len(from_dead)}
    what = f"{fault.kind} of {fault.target}"
    problems = []
    if rate > error_budget:
        problems.append(f"{errors_in} of {len(inside)} requests failed during {what} "
                        f"({rate:.1%} > budget {error_budget:.1%})")
    if gap > max_gap_s and inside:
        problems.append(f"no request succeeded for {gap:.2f} s (bound {max_gap_s} s)")
    if long_waits:
        problems.append(f"{len(long_waits)} requests in flight during {what} were answered by "
                        f"{node} only after it came back, after up to {longest_wait:.2f} s "
                        f"(bound {max_wait_s} s): they waited for it instead of being served "
                        "by a peer")
    if max_latency_s is not None:
        figures["max_latency_s"] = max_latency_s
        if slowest > max_latency_s:
            problems.append(f"requests during {what} took up to {slowest:.2f} s "
                            f"(p99 {p99:.2f} s; latency bound {max_latency_s} s)")
    if errors_after:
        problems.append(f"{errors_after} requests failed after the fault healed")
    if from_dead:
        problems.append(f"{node} answered {len(from_dead)} requests through the entry while "
                        f"{what} was in force")
    missing = []
    if before < min_victim_requests:
        missing.append(Missing(
            f"{node} served {before} requests through the entry in the {lookback_s:.1f} s before "
            f"the fault (need {min_victim_requests}): its failure had little or nothing to fail over",
            "let the victim be the busiest node (--victim busiest), or add users"))
    if len(inside) < min_window_requests:
        missing.append(Missing(
            f"{len(inside)} requests overlapped the fault window (need {min_window_requests})",
            "raise --load-users or --load-rate, or lengthen --fault-seconds"))
    waited = f", {len(who.waited)} waited for it (longest {longest_wait:.2f} s)" if who.waited else ""
    ok_text = (f"{len(inside)} requests overlapped {what}: {len(who.by_peers)} served by peers, "
               f"{len(who.victim_before)} by {node} before the fault{waited}, {errors_in} failed "
               f"(the budget catches {errors_caught_at(len(inside), error_budget)}); "
               f"gap {gap:.2f} s, slowest {slowest:.2f} s")
    verdict = decide(prop, "failover", problems, missing, ok_text, figures)
    return verdict if max_latency_s is not None else \
        verdict.noting("latency during the fault (no --max-failover-latency set)")


# -- C6/C7 no redirect -----------------------------------------------------------------------

def not_redirected(records: Iterable[RequestRecord], fault: FaultEvent,
                   peer_error_budget: float = 0.0, prop: Property = Property.C6) -> Verdict:
    """Requests addressed to a failed node are never served by another node.

    Everything addressed to the failed node (the fault's) must be answered by it or by nobody; during the
    fault, none of it may succeed (the endpoint refused or errored); requests to the other
    nodes keep succeeding within `peer_error_budget`. Through a cluster entry (when the
    cluster has one for the protocol): once the entry has served sessions on the failed node,
    sessions it serves on another node during the fault are redirected ones.
    """
    assert fault.end_mono is not None
    failed_node = fault.node
    rs = list(records)
    via_entry = [r for r in rs if r.endpoint == ENTRY]
    entry_had_victim = any(r.ok and r.node == failed_node and r.end_mono < fault.start_mono
                           for r in via_entry)
    addressed = [r for r in rs if r.endpoint == failed_node]
    elsewhere = [r for r in addressed if r.node not in (None, failed_node)]
    # Down while the fault was in force: a session started then and timing out after the fault
    # (a paused node) still errored because of it, and one served after the node came back (a
    # restart inside the fault) is not a violation.
    down, back = fault.in_force
    during = [r for r in addressed if down <= r.start_mono <= back]
    served_during = [r for r in during if r.ok and r.end_mono <= back]
    entry_moved = [r for r in via_entry if entry_had_victim and r.ok and r.node != failed_node
                   and down <= r.start_mono and r.end_mono <= back]
    peers = [r for r in rs if r.endpoint not in (ENTRY, failed_node)
             and r.start_mono >= fault.start_mono and r.end_mono <= fault.end_mono]
    peer_errors = sum(not r.ok for r in peers)
    figures: Figures = {"addressed_to_failed": len(addressed), "during_fault": len(during),
                        "served_by_other_node": len(elsewhere),
                        "succeeded_during_fault": len(served_during),
                        "peer_requests": len(peers), "peer_errors": peer_errors,
                        "entry_sessions": len(via_entry), "entry_redirected": len(entry_moved)}
    problems, missing = [], []
    if not during:
        missing.append(Missing(f"nothing was addressed to {failed_node} during the fault",
                               "address sessions to the failed node while the fault lasts"))
    if elsewhere:
        who = Counter(r.node for r in elsewhere).most_common(1)[0][0]
        problems.append(f"{len(elsewhere)} requests addressed to {failed_node} were answered "
                        f"by another node ({who})")
    if served_during:
        problems.append(f"{len(served_during)} requests to {failed_node} succeeded while it was down")
    if entry_moved:
        who = Counter(r.node for r in entry_moved).most_common(1)[0][0]
        problems.append(f"the cluster entry served {len(entry_moved)} sessions on {who} while "
                        f"{failed_node}, which it had served them on, was down: it redirected them")
    if peers and peer_errors / len(peers) > peer_error_budget:
        problems.append(f"{peer_errors} of {len(peers)} requests to the other nodes failed")
    return decide(prop, "not redirected", problems, missing,
                  f"all {len(during)} requests to failed {failed_node} errored; "
                  f"none was answered by another node", figures)


# -- C8 redirect, C9 admin -------------------------------------------------------------------

def redirected(records: Iterable[RequestRecord], cannot_serve: Sequence[str],
               can_serve: Sequence[str], max_hops: int = 1, prop: Property = Property.C8) -> Verdict:
    """Requests to nodes that cannot serve are redirected, in few hops, to nodes that can."""
    rs = [r for r in records if r.endpoint in cannot_serve]
    failed = [r for r in rs if not r.ok]
    wrong = [r for r in rs if r.ok and r.node not in can_serve]
    not_redirected_ = [r for r in rs if r.ok and (not r.redirects or r.redirects[0] != r.endpoint)]
    loops = [r for r in rs if r.error and "loop" in r.error]
    hops = max((len(r.redirects) for r in rs), default=0)
    figures: Figures = {"requests": len(rs), "failed": len(failed), "loops": len(loops),
                        "served_by_incapable": len(wrong), "max_hops": hops,
                        "not_redirected": len(not_redirected_)}
    problems, missing = [], []
    if not rs:
        missing.append(Missing("no request was addressed to a node that cannot serve",
                               "address requests to the nodes made unable to serve"))
    if loops:
        problems.append(f"{len(loops)} requests went round a redirect loop")
    if failed:
        problems.append(f"{len(failed)} of {len(rs)} requests failed "
                        f"(first: {failed[0].error})")
    if wrong:
        problems.append(f"{len(wrong)} requests were served by a node that cannot serve them")
    if not_redirected_:
        problems.append(f"{len(not_redirected_)} requests were not redirected by the node addressed")
    if hops > max_hops:
        problems.append(f"a request took {hops} redirect hops (bound {max_hops})")
    return decide(prop, "redirect", problems, missing,
                  f"{len(rs)} requests redirected in at most {hops} hop(s) to capable nodes",
                  figures)


def runs_where_addressed(records: Iterable[RequestRecord], prop: Property = Property.C9) -> Verdict:
    """Administrative calls run on the node addressed: no redirect, served by that node."""
    rs = [r for r in records if r.endpoint != ENTRY]
    moved = [r for r in rs if r.redirects or (r.node and r.node != r.endpoint)]
    failed = [r for r in rs if not r.ok and not r.redirects]
    figures: Figures = {"requests": len(rs), "redirected_or_moved": len(moved), "failed": len(failed)}
    problems, missing = [], []
    if not rs:
        missing.append(Missing("no administrative request was addressed to a node",
                               "list the administrative services in the topology (evidence.admin.services)"))
    if moved:
        r = moved[0]
        problems.append(f"{len(moved)} administrative calls left the node addressed "
                        f"(e.g. {r.operation} to {r.endpoint} ran on {r.node})")
    if failed:
        problems.append(f"{len(failed)} administrative calls failed (first: {failed[0].error})")
    return decide(prop, "admin not redirected", problems, missing,
                  f"all {len(rs)} administrative calls ran on the node addressed", figures)


# -- C5 rejoin -------------------------------------------------------------------------------

@dataclass(frozen=True)
class Return:
    """How a restarted node came back through the entry, from its answers (`first`: its first
    answer; `stable`: its first answer after the last flap; None: it never answered). A flap
    is a stretch of more than `flap_gap_s` in which the entry answered only from other nodes:
    out of rotation again while it was starting."""

    first: float | None
    stable: float | None
    flaps: int
    flap_s: float

    @classmethod
    def find(cls, records: Iterable[RequestRecord], node: str, back_at: float,
             flap_gap_s: float) -> "Return":
        ok = [r for r in records if r.endpoint == ENTRY and r.ok and r.start_mono >= back_at]
        mine = sorted(r.end_mono for r in ok if r.node == node)
        others = sorted(r.end_mono for r in ok if r.node != node)
        if not mine:
            return cls(None, None, 0, 0.0)
        stable, flaps, flap_s = mine[0], 0, 0.0
        for a, b in zip(mine, mine[1:]):
            served_others = bisect.bisect_left(others, b) - bisect.bisect_right(others, a) > 0
            if b - a > flap_gap_s and served_others:
                stable, flaps, flap_s = b, flaps + 1, flap_s + (b - a)
        return cls(mine[0], stable, flaps, flap_s)


def rejoin_judgeable(records: Sequence[RequestRecord], node: str, back_at: float, bound_s: float,
                     nodes: Sequence[str], tolerance: float = 0.35, alpha: float = 0.001,
                     flap_gap_s: float = 1.0) -> bool:
    """Has the traffic after a restart what `rejoined` needs? Either the node has been stably
    back for `bound_s` with enough answers since for its share to be judged, or it has
    missed the bound (late or never): the load that feeds the check can stop then."""
    entry = [r for r in records if r.endpoint == ENTRY and r.start_mono >= back_at]
    if not entry:
        return False
    latest = max(r.end_mono for r in entry)
    back = Return.find(entry, node, back_at, flap_gap_s)
    if back.first is None or back.first - back_at > bound_s:
        return latest - back_at > bound_s + flap_gap_s
    assert back.stable is not None
    since = sum(1 for r in entry if r.ok and r.start_mono >= back.stable)
    return latest - back.stable >= bound_s and \
        since >= observations_needed(len(nodes), tolerance, alpha) * len(nodes)


def rejoined(records: Iterable[RequestRecord], node: str, back_at: float, bound_s: float,
             nodes: Sequence[str], tolerance: float = 0.35, alpha: float = 0.001,
             unit: BalancingUnit = "request", flap_gap_s: float = 1.0, prop: Property = Property.C5) -> Verdict:
    """A restarted node serves through the entry within `bound_s` and then takes its share.

    The verdict says which part failed: the node came back late (or never), or it came back
    and the split afterwards was unfair. The split is judged from the moment the node is
    stably back (`Return`): a node that answers, drops out while it starts and comes back
    has flapped, a figure of the verdict, not an unfair split. Evidence: traffic through
    the entry after the restart, and enough of it after the node is stably back to judge
    the split within `tolerance` at `alpha`.
    """
    rs = sorted((r for r in records if r.endpoint == ENTRY and r.start_mono >= back_at),
                key=lambda r: r.end_mono)
    back = Return.find(rs, node, back_at, flap_gap_s)
    delay = (back.first - back_at) if back.first is not None else float("inf")
    figures: Figures = {"requests_after_restart": len(rs), "bound_s": bound_s,
                        "rejoin_s": round(delay, 3) if back.first is not None else "never",
                        "flaps_while_starting": back.flaps, "flap_s": round(back.flap_s, 3),
                        "tolerance": tolerance}
    if back.stable is not None:
        figures["stably_back_s"] = round(back.stable - back_at, 3)
    if not rs:
        return inconclusive(prop, "rejoin", [Missing(
            "no request went through the entry after the restart",
            "keep the load running for the rejoin bound after the node restarts "
            "(--rejoin-load-cap)")], figures)
    if rs[-1].start_mono - back_at < bound_s and back.first is None:
        return inconclusive(prop, "rejoin", [Missing(
            f"the traffic after the restart lasted {rs[-1].start_mono - back_at:.2f} s, "
            f"shorter than the rejoin bound {bound_s} s", "raise --rejoin-load-cap")], figures)
    if delay > bound_s:
        figures["failed_part"] = "came back late" if back.first is not None else "never came back"
        late = (f"{node} came back late: it first served {delay:.2f} s after its restart "
                f"(bound {bound_s} s)" if back.first is not None else
                f"{node} never came back: it served nothing of {len(rs)} requests in the "
                f"{rs[-1].start_mono - back_at:.1f} s after its restart (bound {bound_s} s)")
        return decide(prop, "rejoin", [late], [], "", figures)
    assert back.stable is not None
    came_back = f"{node} came back after {delay:.2f} s" + (
        f" (it dropped out {back.flaps} time(s) for {back.flap_s:.2f} s while starting; "
        f"stably back after {back.stable - back_at:.2f} s)" if back.flaps else "")
    share = balance([r for r in rs if r.start_mono >= back.stable], nodes, tolerance=tolerance,
                    alpha=alpha, unit=unit, prop=prop)
    figures.update({k: v for k, v in share.figures.items() if k != "tolerance"})
    if share.outcome == "violated":
        figures["failed_part"] = "unfair split after rejoining"
        return decide(prop, "rejoin", [f"{came_back} but the split afterwards was unfair: "
                                       f"{share.explanation}"], [], "", figures)
    if share.outcome == "inconclusive":
        return Verdict(prop, "rejoin", "inconclusive",
                       f"{came_back}; its share afterwards cannot be judged: {share.explanation}",
                       figures)
    return decide(prop, "rejoin", [], [], f"{came_back} and took its share", figures)


# -- C10 state, C14 exactly once -------------------------------------------------------------

def state_continuity(reads: Iterable[tuple[RequestRecord, object]], expected: Mapping[str, str],
                     prop: Property = Property.C10) -> Verdict:
    """Every read of a key returns the value written for it, whichever node answers.
    `reads`: each read's record (its key the key read) with the value it returned."""
    rs = [(r, v) for r, v in reads if r.key in expected]
    wrong = [(r, v) for r, v in rs if not r.ok or str(v) != expected[r.key or ""]]
    nodes = sorted({r.node or "?" for r, _ in rs})
    figures: Figures = {"reads": len(rs), "wrong_or_failed": len(wrong), "nodes": ",".join(nodes)}
    problems, missing = [], []
    if not rs:
        missing.append(Missing("no read of a written key", "read the keys written through another node"))
    if wrong:
        r, got = wrong[0]
        problems.append(f"{len(wrong)} of {len(rs)} reads did not return the value written "
                        f"(key {r.key} on {r.node}: {got if r.ok else r.error!r} instead of "
                        f"{expected[r.key or '']!r})")
    return decide(prop, "state continuity", problems, missing,
                  f"{len(rs)} reads on {', '.join(nodes)} returned the values written", figures)


def session_continuity(calls: Iterable[tuple[RequestRecord, object]], prop: Property = Property.C10) -> Verdict:
    """A stateful session's counter goes 1, 2, 3, ... across nodes, without reset or skip.
    `calls`: each call's record (its key the session) with the counter it returned."""
    by_session: dict[str, list[tuple[RequestRecord, object]]] = {}
    for r, count in calls:
        if r.ok and r.key:
            by_session.setdefault(r.key, []).append((r, count))
    broken = []
    for key, rs in by_session.items():
        counts = [_as_int(c) for _, c in sorted(rs, key=lambda rc: rc[0].start_mono)]
        if counts != list(range(1, len(counts) + 1)):
            broken.append((key, counts))
    nodes = {r.node for rs in by_session.values() for r, _ in rs}
    moved = sum(1 for rs in by_session.values() if len({r.node for r, _ in rs}) > 1)
    figures: Figures = {"sessions": len(by_session), "broken_sessions": len(broken),
                        "nodes_seen": len(nodes), "sessions_served_by_several_nodes": moved}
    problems, missing = [], []
    if not moved:
        missing.append(Missing(f"no session was served by more than one node ({len(by_session)} "
                               "sessions with a successful call)",
                               "make more calls per session through the entry across the fault"))
    if broken:
        key, counts = broken[0]
        problems.append(f"{len(broken)} sessions lost state (e.g. counts {counts[:8]})")
    return decide(prop, "session continuity", problems, missing,
                  f"{len(by_session)} sessions kept their state across {len(nodes)} nodes",
                  figures)


def _as_int(value: object) -> int:
    try:
        return int(str(value))
    except ValueError:
        return -1


def exactly_once(acknowledged: Iterable[RequestRecord], audit: Iterable[Mapping[str, object]],
                 kind: str, prop: Property = Property.C14) -> Verdict:
    """Every side effect a client was told succeeded is recorded exactly once."""
    acked = {r.key for r in acknowledged if r.ok and r.key}
    recorded = Counter(str(e.get("key")) for e in audit if e.get("kind", kind) == kind)
    missing = sorted(k for k in acked if recorded[k] == 0)
    doubled = sorted(k for k in acked if recorded[k] > 1)
    figures: Figures = {"acknowledged": len(acked), "missing": len(missing), "duplicated": len(doubled)}
    problems, evidence = [], []
    if not acked:
        evidence.append(Missing(f"no {kind} was acknowledged", f"send {kind}s that succeed"))
    if missing:
        problems.append(f"{len(missing)} acknowledged {kind}s are missing (e.g. {missing[0]})")
    if doubled:
        problems.append(f"{len(doubled)} {kind}s were recorded more than once (e.g. {doubled[0]} "
                        f"x{recorded[doubled[0]]})")
    return decide(prop, "exactly once", problems, evidence,
                  f"all {len(acked)} acknowledged {kind}s recorded exactly once", figures)


# -- C11 identical nodes ---------------------------------------------------------------------

def identical(manifests: Mapping[str, Mapping[str, object]], prop: Property = Property.C11) -> Verdict:
    """Every node reports the same versions, packages, connections and services. Each field
    that differs is named with every node's value (for a mapping, each key that differs; for
    a list, the items not on every node)."""
    fields_ = sorted({k for m in manifests.values() for k in m} - {"node"})
    differing = [f for f in fields_ if len({repr(m.get(f)) for m in manifests.values()}) > 1]
    figures: Figures = {"nodes": len(manifests), "differing_fields": ",".join(differing) or "none"}
    missing = [] if len(manifests) > 1 and fields_ else [Missing(
        f"{len(manifests)} manifests with {len(fields_)} fields to compare",
        "read a manifest from every node")]
    problems = [difference(f, {n: m.get(f, ABSENT) for n, m in manifests.items()})
                for f in differing]
    return decide(prop, "identical nodes", problems, missing,
                  f"{len(manifests)} nodes report identical {', '.join(fields_)}", figures)


ABSENT = object()  # a field or key a node's manifest does not have


def difference(name: str, values: Mapping[str, object]) -> str:
    """How `name` differs between nodes, every node's value named."""
    present = [v for v in values.values() if v is not ABSENT]
    if present and all(isinstance(v, Mapping) for v in present):
        keys = sorted({k for v in present for k in v}, key=str)  # type: ignore[union-attr]
        per_key = {k: {n: v.get(k, ABSENT) if isinstance(v, Mapping) else ABSENT
                       for n, v in values.items()} for k in keys}
        return "; ".join(difference(f"{name}.{k}", of_key) for k, of_key in per_key.items()
                         if len({repr(x) for x in of_key.values()}) > 1)
    if present and all(isinstance(v, list) for v in present):
        items = sorted({repr(i) for v in present for i in v})  # type: ignore[union-attr]
        parts = []
        for item in items:
            having = [n for n, v in values.items() if isinstance(v, list) and item in map(repr, v)]
            if len(having) < len(values):
                parts.append(f"{name} has {item} only on {', '.join(having)}")
        return "; ".join(parts)
    by_value: dict[str, list[str]] = {}
    for node, value in values.items():
        by_value.setdefault("absent" if value is ABSENT else repr(value), []).append(node)
    return f"{name} differs: " + " / ".join(f"{v} on {', '.join(ns)}" for v, ns in by_value.items())


def replicated_within(observations: Iterable[Observation], nodes: Sequence[str], version: str,
                      published_at: float, bound_s: float, prop: Property = Property.C11) -> Verdict:
    """A package version published at `published_at` reached every node within `bound_s`:
    judged from the versions each node reported (`observations`), its first report of
    `version` being its arrival (none: it never arrived)."""
    arrivals: dict[str, float | None] = dict.fromkeys(nodes)
    readings = sorted(observations, key=lambda o: o.at_mono)
    if not readings or len(arrivals) < 2:
        return inconclusive(prop, "replication", [Missing(
            f"{len(readings)} version reports from {len(arrivals)} node(s)",
            "poll every node for the replicated package")], {"nodes": len(arrivals), "bound_s": bound_s})
    for o in readings:
        if o.node in arrivals and arrivals[o.node] is None and str(o.value) == version:
            arrivals[o.node] = o.at_mono - published_at
    late = {n: t for n, t in arrivals.items() if t is None or t > bound_s}
    slowest = max((t for t in arrivals.values() if t is not None), default=0.0)
    figures: Figures = {"nodes": len(arrivals), "late_or_missing": len(late),
                        "slowest_s": round(slowest, 3), "bound_s": bound_s}
    problems = [f"{n} {'never received it' if t is None else f'received it after {t:.2f} s'}"
                for n, t in sorted(late.items())]
    return decide(prop, "replication", problems, [],
                  f"replicated to {len(arrivals)} nodes within {slowest:.2f} s", figures)


# -- C12 pools, C13 scale --------------------------------------------------------------------

def pool_bounds(observations: Iterable[Observation], pool_size: int, backend_limit: int,
                prop: Property = Property.C12) -> Verdict:
    """Per-node pools, counted at the back end, never exceed their size, nor the back end's
    limit. Each round of readings (`Observation.sample`) is one sample of every node; a
    reading the back end could not answer for want of connections counts as refused."""
    readings = list(observations)
    refused = sum(1 for o in readings if o.error)
    rounds: dict[int, dict[str, int]] = {}
    for o in readings:
        if o.error is None and isinstance(o.value, int):
            rounds.setdefault(o.sample, {})[o.node] = o.value
    samples = list(rounds.values())
    nodes = sorted({n for s in samples for n in s})
    peak = {n: max(s.get(n, 0) for s in samples) for n in nodes}
    peak_total = max((sum(s.values()) for s in samples), default=0)
    figures: Figures = {"samples": len(samples), "refused_samples": refused,
                        "pool_size": pool_size, "backend_limit": backend_limit,
                        "peak_total": peak_total}
    figures.update({f"peak_{n}": peak[n] for n in nodes})
    problems = []
    missing = [] if samples else [Missing("no connection count was sampled",
                                          "sample the back end's connections during the load")]
    if len(nodes) * pool_size > backend_limit:
        problems.append(f"{len(nodes)} nodes x pool size {pool_size} exceeds the back end's "
                        f"limit of {backend_limit} connections")
    if refused:
        problems.append(f"the back end refused {refused} connection counts: it ran out of connections")
    over = [n for n in nodes if peak[n] > pool_size]
    if over:
        problems.append(f"{', '.join(over)} held up to {max(peak[n] for n in over)} connections "
                        f"(pool size {pool_size})")
    return decide(prop, "pool bounds", problems, missing,
                  f"at most {peak_total} back-end connections from {len(nodes)} nodes, "
                  f"each within its pool of {pool_size}", figures)


def pool_released_and_refilled(observations: Iterable[Observation], fault: FaultEvent,
                               pool_size: int, prop: Property = Property.C12) -> Verdict:
    """A killed node's connections are released at the back end; its pool refills on restart.
    Judged from the node's connection counts: the last one read while it was down, and the
    last one read after it came back."""
    assert fault.end_mono is not None
    node = fault.node
    down, back = fault.in_force
    mine = sorted((o for o in observations if o.node == node and o.error is None),
                  key=lambda o: o.at_mono)
    while_dead = next((o.value for o in reversed(mine) if down <= o.at_mono <= back), None)
    after_restart = next((o.value for o in reversed(mine) if o.at_mono >= fault.end_mono), None)
    figures: Figures = {"connections_while_dead": "not read" if while_dead is None else while_dead,
                        "connections_after_restart": "not read" if after_restart is None else after_restart,
                        "pool_size": pool_size}
    missing = [Missing(f"{node}'s connections were not read {when}",
                       "read the back end's connections while the node is down and after")
               for when, value in (("while it was down", while_dead),
                                   ("after its restart", after_restart)) if value is None]
    problems = []
    if while_dead:
        problems.append(f"the back end still held {while_dead} connections of killed {node}")
    if after_restart is not None and after_restart != pool_size:
        problems.append(f"{node}'s pool holds {after_restart} connections after restart, "
                        f"not {pool_size}")
    return decide(prop, "pool release and refill", problems, missing,
                  f"{node}'s connections were released on kill and refilled to {pool_size}",
                  figures)
