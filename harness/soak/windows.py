"""What each window of a soak is judged by: pure functions of its records and its fault.

A fault window (the fault, then the time to recover) gets failover (C2 HTTP, C3 HTTPS, or C4
for a network fault on the link it hit), not-redirected (C6 FTP, C7 SMTP: what was addressed
to a node that went away errored, nobody else served it) and rejoin (C5); a quiet window (no
fault in force, recovery over) gets balance (C1). A window is judged once every request that
overlaps it has finished (the client timeout after its end).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Literal

from harness import checks
from harness.config import BalancingUnit
from harness.fault_kinds import NODE_FAULTS
from harness.history.timeline import FaultEvent, FaultKind
from harness.history.requests import ENTRY, RequestRecord
from harness.judge import Judge
from harness.properties import Property
from harness.verdict import Figures, Missing, Outcome, Verdict, inconclusive, merge

CLIENT_TIMEOUT_S = 5.0  # the clients' own (harness.traffic.clients): a request ends by then


@dataclass
class Window:
    """A stretch of the soak judged on its own: a fault and its recovery, or a quiet period."""

    number: int  # in the order judged (0 until then)
    what: str
    start: float  # monotonic; records overlapping [start, end] are its evidence
    end: float
    event: FaultEvent | None = None
    verdicts: list[Verdict] = field(default_factory=list)
    requests: int = 0
    errors: int = 0
    not_run: str = ""
    """why the fault was not injected (the cluster was not healthy before it)"""

    @property
    def due(self) -> float:
        """When every request overlapping it has finished."""
        return self.end + CLIENT_TIMEOUT_S + 1.0

    @property
    def outcome(self) -> Outcome | Literal["unjudged", "not run"]:
        """Its verdicts' worst; "unjudged" if it had none (nothing it covers is claimed);
        "not run" for a fault the cluster was not healthy enough to take."""
        if self.not_run:
            return "not run"
        return merge(self.verdicts) if self.verdicts else "unjudged"

    def judge(self, records: list[RequestRecord], nodes: list[str], judge: Judge,
              unit: BalancingUnit, others: Collection[str]) -> None:
        """Its verdicts from the records overlapping it; `others`: nodes under another fault
        meanwhile (their FTP and SMTP errors are not this fault's)."""
        mine = [r for r in records if r.end_mono >= self.start and r.start_mono <= self.end]
        self.requests, self.errors = len(mine), sum(not r.ok for r in mine)
        self.verdicts = (fault_verdicts(self.event, mine, nodes, judge, unit, others) if self.event
                         else quiet_verdicts(mine, nodes, judge, unit))


def fault_verdicts(event: FaultEvent, records: list[RequestRecord], nodes: list[str],
                   judge: Judge, unit: BalancingUnit, others: Collection[str] = ()) -> list[Verdict]:
    """The checks a fault's window gets: a node fault is failover for HTTP (C2) and HTTPS (C3),
    not-redirected for FTP (C6) and SMTP (C7), and rejoin (C5); a network fault is failover of
    the protocol on the link it hit: a cut as C2/C3 (the node is gone for that protocol, as in
    the failover scenarios), any other as C4.

    FTP and SMTP users address each node about once a second, so a short fault (a restart)
    may see no session addressed to its node: then the window does not judge C6/C7 and says
    so (`unchecked`); the soak as a whole needs at least one window that did
    (`soak_verdict`)."""
    node, link = event.node, event.link

    def of(protocol: str) -> list[RequestRecord]:
        return [r for r in records if r.protocol == protocol and r.endpoint not in others]

    def failover(protocol: str, prop: Property) -> Verdict:
        return judge.failover(of(protocol), event, prop)

    if not event.kind.takes_the_node:
        assert link is not None
        cut = {"http": Property.C2, "https": Property.C3}.get(link, Property.C4) if event.kind == FaultKind.CUT else Property.C4
        return [failover(link, cut)]
    verdicts = [failover(p, prop) for p, prop in (("http", Property.C2), ("https", Property.C3)) if of(p)]
    assert event.end_mono is not None
    verdicts.append(judge.rejoin(of("http"), node, event.end_mono, nodes, unit))
    down, back = event.in_force
    for protocol, prop in (("ftp", Property.C6), ("smtp", Property.C7)):
        rs = of(protocol)
        if any(r.endpoint == node and down <= r.start_mono <= back for r in rs):
            verdicts.append(checks.not_redirected(rs, event, prop=prop))
        elif rs:
            verdicts = [v.noting(f"{prop} {protocol.upper()} not redirected: no session was "
                                 f"addressed to {node} in its {back - down:.1f} s down")
                        for v in verdicts]
    return verdicts


def quiet_verdicts(records: list[RequestRecord], nodes: list[str], judge: Judge,
                   unit: BalancingUnit) -> list[Verdict]:
    """A quiet period: the entry's HTTP answers are balanced (C1)."""
    entry = [r for r in records if r.protocol == "http" and r.endpoint == ENTRY and not r.key]
    return [judge.balance(entry, nodes, unit)]


def expected_properties(events: Iterable[FaultEvent], protocols: Collection[str],
                        orders: bool) -> set[str]:
    """What a soak with these faults and this traffic must have judged at least once."""
    kinds = {e.kind for e in events}
    node_faults = any(k.takes_the_node for k in kinds)
    wanted = {Property.C1} | ({Property.C4} if kinds - set(NODE_FAULTS) - {FaultKind.CUT} else set())
    if node_faults:
        wanted |= {Property.C5} | {prop for p, prop in (("http", Property.C2), ("https", Property.C3), ("ftp", Property.C6),
                                                        ("smtp", Property.C7)) if p in protocols}
    return wanted | ({Property.C14} if orders else set())


def soak_verdict(windows: list[Window], end_verdicts: list[Verdict], stopped_early: bool,
                 seed: int, expected: Collection[str] = ()) -> Verdict:
    """The soak's verdict: the worst of every window's and of the end's checks; inconclusive
    if a property it should have judged (`expected`) was judged by no window."""
    unjudged = sorted(set(expected) - {v.prop for w in windows for v in w.verdicts}
                      - {v.prop for v in end_verdicts}, key=lambda p: int(p[1:]))
    at_end = list(end_verdicts)
    if unjudged and not stopped_early:
        at_end.append(inconclusive(unjudged[0], "coverage", [Missing(
            f"no window judged {', '.join(unjudged)}",
            "soak longer (--minutes), or with faults and traffic that reach it")], {}))
    outcome = merge([v for w in windows for v in w.verdicts] + at_end)
    counts = Counter(w.outcome for w in windows)
    figures: Figures = {"seed": seed, "windows": len(windows), **{f"windows_{k}": n for k, n in counts.items()},
                        "faults": sum(1 for w in windows if w.event)}
    if not windows:
        return inconclusive("soak", "soak", [Missing("no window was judged",
                                                     "run the soak longer (--minutes)")], figures)
    if outcome == "passed":
        judged = sorted({v.prop for w in windows for v in w.verdicts} | {v.prop for v in at_end},
                        key=lambda p: int(p[1:]))
        return Verdict(",".join(judged), "soak", "passed",
                       f"{len(windows)} windows and the end checks passed (seed {seed})", figures)
    first = next((w for w in windows if w.outcome == outcome), None)
    worst = next(v for v in (first.verdicts if first else at_end) if v.outcome == outcome)
    where = f"window {first.number} ({first.what})" if first else "the end"
    more = " (stopped at the first violating window; --keep-going finds more)" if stopped_early else ""
    windows_text = f"{counts[outcome]} window(s) {outcome}" if first else f"the end checks {outcome}"
    return Verdict(worst.prop, "soak", outcome,
                   f"{windows_text} (seed {seed}); first: {where}: {worst.summary()}{more}", figures)


def window_rows(windows: Iterable[Window], t0: float) -> Iterator[dict[str, object]]:
    """The per-window table: one row a window."""
    for w in windows:
        yield {"window": w.number, "what": w.what, "start_s": round(w.start - t0, 1),
               "length_s": round(w.end - w.start, 1), "requests": w.requests, "errors": w.errors,
               "outcome": w.outcome,
               "checks": "; ".join(f"{v.prop} {v.check} {v.outcome}" for v in w.verdicts),
               "not_checked": "; ".join(dict.fromkeys(u for v in w.verdicts for u in v.unchecked)),
               "why": w.not_run or " | ".join(v.summary() for v in w.verdicts if not v.passed)}
