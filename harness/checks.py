"""The checkers: pure functions of request logs, fault timelines and observations -> Verdict.

Nothing here talks to a cluster, so every check is unit- and property-tested on hand-made
logs (tests/test_checks.py). Each verdict carries the figures a reader needs to judge it and
one line saying why it passed or failed; `Verdict.require()` turns a failure into a
`ContractViolation`, which Allure files under "contract violated".
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from scipy.stats import chisquare

from harness.errors import ContractViolation
from harness.faults import FaultEvent
from harness.traffic.log import RequestRecord

Figures = dict[str, float | int | str]


@dataclass(frozen=True)
class Verdict:
    prop: str
    check: str
    passed: bool
    explanation: str
    figures: Figures = field(default_factory=dict)

    def require(self) -> "Verdict":
        if not self.passed:
            raise ContractViolation(f"{self.prop} {self.check}: {self.explanation}")
        return self


def _verdict(prop: str, check: str, problems: list[str], ok_text: str, figures: Figures) -> Verdict:
    passed = not problems
    return Verdict(prop, check, passed, ok_text if passed else "; ".join(problems), figures)


# -- C1 balance ------------------------------------------------------------------------------

def balance(records: Iterable[RequestRecord], nodes: Sequence[str],
            weights: Mapping[str, float] | None = None, tolerance: float = 0.25,
            alpha: float = 0.001, prop: str = "C1") -> Verdict:
    """Successful answers spread over `nodes` in proportion to `weights` (default equal).

    Passes when every node's share is within `tolerance` (relative) of its fair share and a
    chi-square goodness-of-fit test does not reject the fair split at significance `alpha`.
    """
    served = Counter(r.node for r in records if r.ok and r.node in nodes)
    total = sum(served.values())
    w = {n: (weights or {}).get(n, 1.0) for n in nodes}
    expected = {n: total * w[n] / sum(w.values()) for n in nodes}
    figures: Figures = {"requests": total}
    figures.update({f"served_{n}": served[n] for n in nodes})
    if total == 0:
        return Verdict(prop, "balance", False, "no request was served", figures)
    deviation = {n: abs(served[n] - expected[n]) / expected[n] for n in nodes}
    worst = max(deviation, key=deviation.__getitem__)
    p_value = float(chisquare([served[n] for n in nodes], [expected[n] for n in nodes]).pvalue) \
        if len(nodes) > 1 else 1.0
    figures.update({"max_relative_deviation": round(deviation[worst], 4),
                    "chi2_p_value": p_value, "tolerance": tolerance, "alpha": alpha})
    problems = []
    if deviation[worst] > tolerance:
        problems.append(f"{worst} served {served[worst]} of {total} requests, "
                        f"{deviation[worst]:.0%} off its fair share {expected[worst]:.0f}")
    if p_value < alpha:
        problems.append(f"the split is unfair at significance {alpha} (p = {p_value:.2g})")
    return _verdict(prop, "balance", problems,
                    f"{total} requests within {deviation[worst]:.0%} of fair shares "
                    f"(p = {p_value:.2g})", figures)


# -- C2/C3/C4 failover -----------------------------------------------------------------------

def largest_gap(times: Iterable[float], start: float, end: float) -> float:
    """Longest time within [start, end] holding none of `times`."""
    marks = [start, *sorted(t for t in times if start <= t <= end), end]
    return max(b - a for a, b in zip(marks, marks[1:]))


def longest_gap(records: Iterable[RequestRecord], start: float, end: float) -> float:
    """Longest time within [start, end] in which no request completed successfully."""
    return largest_gap((r.end_mono for r in records if r.ok), start, end)


def failover(records: Iterable[RequestRecord], fault: FaultEvent, error_budget: float = 0.01,
             max_gap_s: float = 3.0, settle_s: float = 1.0, prop: str = "C2") -> Verdict:
    """Requests through the entry keep succeeding while one node is down, and after it heals.

    The fault window runs from the fault's start to its end plus `settle_s`. Fails when the
    window's error rate exceeds `error_budget`, when no request succeeded for longer than
    `max_gap_s`, when anything failed after the window, or when the faulted node answered
    while it was down.
    """
    assert fault.end_mono is not None, "the fault must be healed before it is judged"
    rs = [r for r in records if r.endpoint == "entry"]
    end = fault.end_mono + settle_s
    inside = [r for r in rs if r.end_mono >= fault.start_mono and r.start_mono <= end]
    after = [r for r in rs if r.start_mono > end]
    errors_in = sum(not r.ok for r in inside)
    errors_after = sum(not r.ok for r in after)
    node, _, link = fault.target.partition("/")
    # Only a fault on the client's path makes a node unreachable; one cut off from the store
    # may rightly answer what it can until its health check takes it out.
    unreachable = fault.kind in ("kill", "pause") or (fault.kind == "down" and link in ("http", "https"))
    applied = fault.applied_mono if fault.applied_mono is not None else fault.start_mono
    healing = fault.healing_mono if fault.healing_mono is not None else fault.end_mono
    from_dead = sum(1 for r in rs if unreachable and r.ok and r.node == node
                    and r.start_mono > applied and r.end_mono < healing)
    rate = errors_in / len(inside) if inside else 0.0
    gap = longest_gap(rs, fault.start_mono, end)
    figures: Figures = {"requests_in_window": len(inside), "errors_in_window": errors_in,
                        "error_rate_in_window": round(rate, 4), "error_budget": error_budget,
                        "failover_gap_s": round(gap, 3), "max_gap_s": max_gap_s,
                        "errors_after_window": errors_after, "answers_from_faulted": from_dead}
    problems = []
    if not inside:
        problems.append("no request overlapped the fault window")
    if rate > error_budget:
        problems.append(f"{errors_in} of {len(inside)} requests failed during "
                        f"{fault.kind} of {fault.target} ({rate:.1%} > budget {error_budget:.1%})")
    if gap > max_gap_s:
        problems.append(f"no request succeeded for {gap:.2f} s (bound {max_gap_s} s)")
    if errors_after:
        problems.append(f"{errors_after} requests failed after the fault healed")
    if from_dead:
        problems.append(f"{node} answered {from_dead} requests while it was down")
    return _verdict(prop, "failover", problems,
                    f"{errors_in} errors in {len(inside)} requests during {fault.kind} of "
                    f"{fault.target}, gap {gap:.2f} s", figures)


# -- C6/C7 no redirect -----------------------------------------------------------------------

def not_redirected(records: Iterable[RequestRecord], failed_node: str, fault: FaultEvent,
                   peer_error_budget: float = 0.0, prop: str = "C6") -> Verdict:
    """Requests addressed to a failed node are never served by another node.

    Everything addressed to `failed_node` must be answered by it or by nobody; during the
    fault, none of it may succeed (the endpoint refused or errored); requests to the other
    nodes keep succeeding within `peer_error_budget`.
    """
    assert fault.end_mono is not None
    rs = list(records)
    addressed = [r for r in rs if r.endpoint == failed_node]
    elsewhere = [r for r in addressed if r.node not in (None, failed_node)]
    during = [r for r in addressed if r.start_mono >= fault.start_mono and r.end_mono <= fault.end_mono]
    served_during = [r for r in during if r.ok]
    peers = [r for r in rs if r.endpoint not in ("entry", failed_node)
             and r.start_mono >= fault.start_mono and r.end_mono <= fault.end_mono]
    peer_errors = sum(not r.ok for r in peers)
    figures: Figures = {"addressed_to_failed": len(addressed), "during_fault": len(during),
                        "served_by_other_node": len(elsewhere),
                        "succeeded_during_fault": len(served_during),
                        "peer_requests": len(peers), "peer_errors": peer_errors}
    problems = []
    if not during:
        problems.append(f"nothing was addressed to {failed_node} during the fault")
    if elsewhere:
        who = Counter(r.node for r in elsewhere).most_common(1)[0][0]
        problems.append(f"{len(elsewhere)} requests addressed to {failed_node} were answered "
                        f"by another node ({who})")
    if served_during:
        problems.append(f"{len(served_during)} requests to {failed_node} succeeded while it was down")
    if peers and peer_errors / len(peers) > peer_error_budget:
        problems.append(f"{peer_errors} of {len(peers)} requests to the other nodes failed")
    return _verdict(prop, "not redirected", problems,
                    f"all {len(during)} requests to failed {failed_node} errored; "
                    f"none was answered by another node", figures)


# -- C8 redirect, C9 admin -------------------------------------------------------------------

def redirected(records: Iterable[RequestRecord], cannot_serve: Sequence[str],
               can_serve: Sequence[str], max_hops: int = 1, prop: str = "C8") -> Verdict:
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
    problems = []
    if not rs:
        problems.append("no request was addressed to a node that cannot serve")
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
    return _verdict(prop, "redirect", problems,
                    f"{len(rs)} requests redirected in at most {hops} hop(s) to capable nodes",
                    figures)


def runs_where_addressed(records: Iterable[RequestRecord], prop: str = "C9") -> Verdict:
    """Administrative calls run on the node addressed: no redirect, served by that node."""
    rs = [r for r in records if r.endpoint != "entry"]
    moved = [r for r in rs if r.redirects or (r.node and r.node != r.endpoint)]
    failed = [r for r in rs if not r.ok and not r.redirects]
    figures: Figures = {"requests": len(rs), "redirected_or_moved": len(moved), "failed": len(failed)}
    problems = []
    if not rs:
        problems.append("no administrative request was addressed to a node")
    if moved:
        r = moved[0]
        problems.append(f"{len(moved)} administrative calls left the node addressed "
                        f"(e.g. {r.operation} to {r.endpoint} ran on {r.node})")
    if failed:
        problems.append(f"{len(failed)} administrative calls failed (first: {failed[0].error})")
    return _verdict(prop, "admin not redirected", problems,
                    f"all {len(rs)} administrative calls ran on the node addressed", figures)


# -- C5 rejoin -------------------------------------------------------------------------------

def rejoined(records: Iterable[RequestRecord], node: str, back_at: float, bound_s: float,
             nodes: Sequence[str], tolerance: float = 0.35, prop: str = "C5") -> Verdict:
    """A restarted node serves through the entry within `bound_s` and then takes its share."""
    rs = sorted((r for r in records if r.endpoint == "entry" and r.start_mono >= back_at),
                key=lambda r: r.end_mono)
    first = next((r.end_mono for r in rs if r.ok and r.node == node), None)
    delay = (first - back_at) if first is not None else float("inf")
    figures: Figures = {"rejoin_s": round(delay, 3) if first else "never", "bound_s": bound_s}
    problems = []
    if delay > bound_s:
        problems.append(f"{node} served nothing within {bound_s} s of its restart"
                        if first is None else f"{node} took {delay:.2f} s to rejoin (bound {bound_s} s)")
    else:
        share = balance([r for r in rs if r.start_mono >= first], nodes, tolerance=tolerance,
                        prop=prop)
        figures.update(share.figures)
        if not share.passed:
            problems.append(f"after rejoining: {share.explanation}")
    return _verdict(prop, "rejoin", problems,
                    f"{node} rejoined after {delay:.2f} s and took its share", figures)


# -- C10 state, C14 exactly once -------------------------------------------------------------

def state_continuity(reads: Iterable[RequestRecord], expected: Mapping[str, str],
                     prop: str = "C10") -> Verdict:
    """Every read of a key returns the value written for it, whichever node answers."""
    rs = [r for r in reads if r.key in expected]
    wrong = [r for r in rs if not r.ok or str(r.detail.get("value")) != expected[r.key or ""]]
    nodes = sorted({r.node or "?" for r in rs})
    figures: Figures = {"reads": len(rs), "wrong_or_failed": len(wrong), "nodes": ",".join(nodes)}
    problems = []
    if not rs:
        problems.append("no read of a written key")
    if wrong:
        r = wrong[0]
        got = r.detail.get("value", r.error)
        problems.append(f"{len(wrong)} of {len(rs)} reads did not return the value written "
                        f"(key {r.key} on {r.node}: {got!r} instead of {expected[r.key or '']!r})")
    return _verdict(prop, "state continuity", problems,
                    f"{len(rs)} reads on {', '.join(nodes)} returned the values written", figures)


def session_continuity(records: Iterable[RequestRecord], prop: str = "C10") -> Verdict:
    """A stateful session's counter goes 1, 2, 3, ... across nodes, without reset or skip."""
    by_session: dict[str, list[RequestRecord]] = {}
    for r in records:
        if r.ok and r.key:
            by_session.setdefault(r.key, []).append(r)
    broken = []
    for key, rs in by_session.items():
        counts = [int(r.detail.get("count", -1)) for r in sorted(rs, key=lambda r: r.start_mono)]
        if counts != list(range(1, len(counts) + 1)):
            broken.append((key, counts))
    nodes = {r.node for rs in by_session.values() for r in rs}
    figures: Figures = {"sessions": len(by_session), "broken_sessions": len(broken),
                        "nodes_seen": len(nodes)}
    problems = []
    if not by_session:
        problems.append("no session call succeeded")
    if broken:
        key, counts = broken[0]
        problems.append(f"{len(broken)} sessions lost state (e.g. counts {counts[:8]})")
    return _verdict(prop, "session continuity", problems,
                    f"{len(by_session)} sessions kept their state across {len(nodes)} nodes",
                    figures)


def exactly_once(acknowledged: Iterable[RequestRecord], audit: Iterable[Mapping[str, object]],
                 kind: str, prop: str = "C14") -> Verdict:
    """Every side effect a client was told succeeded is recorded exactly once."""
    acked = {r.key for r in acknowledged if r.ok and r.key}
    recorded = Counter(str(e.get("key")) for e in audit if e.get("kind") == kind)
    missing = sorted(k for k in acked if recorded[k] == 0)
    doubled = sorted(k for k in acked if recorded[k] > 1)
    figures: Figures = {"acknowledged": len(acked), "missing": len(missing), "duplicated": len(doubled)}
    problems = []
    if not acked:
        problems.append("no side effect was acknowledged")
    if missing:
        problems.append(f"{len(missing)} acknowledged {kind}s are missing (e.g. {missing[0]})")
    if doubled:
        problems.append(f"{len(doubled)} {kind}s were recorded more than once (e.g. {doubled[0]} "
                        f"x{recorded[doubled[0]]})")
    return _verdict(prop, "exactly once", problems,
                    f"all {len(acked)} acknowledged {kind}s recorded exactly once", figures)


# -- C11 identical nodes ---------------------------------------------------------------------

def identical(manifests: Mapping[str, Mapping[str, object]], prop: str = "C11") -> Verdict:
    """Every node reports the same versions, packages, connections and services."""
    fields = sorted({k for m in manifests.values() for k in m} - {"node"})
    differing = [f for f in fields if len({repr(m.get(f)) for m in manifests.values()}) > 1]
    figures: Figures = {"nodes": len(manifests), "differing_fields": ",".join(differing) or "none"}
    problems = []
    for f in differing:
        values = Counter(repr(m.get(f)) for m in manifests.values())
        common = values.most_common(1)[0][0]
        odd = [n for n, m in manifests.items() if repr(m.get(f)) != common]
        problems.append(f"{f} differs on {', '.join(odd)}")
    return _verdict(prop, "identical nodes", problems,
                    f"{len(manifests)} nodes report identical {', '.join(fields)}", figures)


def replicated_within(arrivals: Mapping[str, float | None], bound_s: float,
                      prop: str = "C11") -> Verdict:
    """A replicated package reached every node within `bound_s` (None: never arrived)."""
    late = {n: t for n, t in arrivals.items() if t is None or t > bound_s}
    slowest = max((t for t in arrivals.values() if t is not None), default=0.0)
    figures: Figures = {"nodes": len(arrivals), "late_or_missing": len(late),
                        "slowest_s": round(slowest, 3), "bound_s": bound_s}
    problems = [f"{n} {'never received it' if t is None else f'received it after {t:.2f} s'}"
                for n, t in sorted(late.items())]
    return _verdict(prop, "replication", problems,
                    f"replicated to {len(arrivals)} nodes within {slowest:.2f} s", figures)


# -- C12 pools, C13 scale --------------------------------------------------------------------

def pool_bounds(samples: Sequence[Mapping[str, int]], pool_size: int, backend_limit: int,
                refused: int = 0, prop: str = "C12") -> Verdict:
    """Per-node pools, counted at the back end, never exceed their size, nor the back end's limit.

    `refused` counts samples the back end could not answer because it ran out of connections.
    """
    nodes = sorted({n for s in samples for n in s})
    peak = {n: max(s.get(n, 0) for s in samples) for n in nodes}
    peak_total = max((sum(s.values()) for s in samples), default=0)
    figures: Figures = {"samples": len(samples), "refused_samples": refused,
                        "pool_size": pool_size, "backend_limit": backend_limit,
                        "peak_total": peak_total}
    figures.update({f"peak_{n}": peak[n] for n in nodes})
    problems = []
    if not samples:
        problems.append("no connection count was sampled")
    if len(nodes) * pool_size > backend_limit:
        problems.append(f"{len(nodes)} nodes x pool size {pool_size} exceeds the back end's "
                        f"limit of {backend_limit} connections")
    if refused:
        problems.append(f"the back end refused {refused} connection counts: it ran out of connections")
    over = [n for n in nodes if peak[n] > pool_size]
    if over:
        problems.append(f"{', '.join(over)} held up to {max(peak[n] for n in over)} connections "
                        f"(pool size {pool_size})")
    return _verdict(prop, "pool bounds", problems,
                    f"at most {peak_total} back-end connections from {len(nodes)} nodes, "
                    f"each within its pool of {pool_size}", figures)


def scales(before_rps: float, after_rps: float, min_gain: float, new_node_share: float,
           fair_share: float, tolerance: float = 0.5, prop: str = "C13") -> Verdict:
    """One more node raises saturated throughput by `min_gain` and takes its share."""
    gain = after_rps / before_rps if before_rps else 0.0
    figures: Figures = {"rps_before": round(before_rps, 1), "rps_after": round(after_rps, 1),
                        "ratio": round(gain, 3), "min_ratio": min_gain,
                        "new_node_share": round(new_node_share, 3), "fair_share": round(fair_share, 3)}
    problems = []
    if gain < min_gain:
        problems.append(f"throughput went from {before_rps:.0f} to {after_rps:.0f} req/s "
                        f"(x{gain:.2f} < x{min_gain})")
    if new_node_share < fair_share * (1 - tolerance):
        problems.append(f"the new node served {new_node_share:.0%} of requests "
                        f"(fair share {fair_share:.0%})")
    return _verdict(prop, "scales", problems,
                    f"throughput x{gain:.2f} with one more node taking {new_node_share:.0%}",
                    figures)


def pool_released_and_refilled(node: str, while_dead: int, after_restart: int, pool_size: int,
                               prop: str = "C12") -> Verdict:
    """A killed node's connections are released at the back end; its pool refills on restart."""
    figures: Figures = {"connections_while_dead": while_dead,
                        "connections_after_restart": after_restart, "pool_size": pool_size}
    problems = []
    if while_dead:
        problems.append(f"the back end still held {while_dead} connections of killed {node}")
    if after_restart != pool_size:
        problems.append(f"{node}'s pool holds {after_restart} connections after restart, "
                        f"not {pool_size}")
    return _verdict(prop, "pool release and refill", problems,
                    f"{node}'s connections were released on kill and refilled to {pool_size}",
                    figures)
