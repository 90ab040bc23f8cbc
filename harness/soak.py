"""A soak: minutes of load on every protocol, a seeded nemesis, the contract judged window by
window, in flat memory.

Jepsen's shape: a generator (Locust drivers, `harness.traffic.load`, streaming their request
logs to rotated segments on disk), a nemesis (`harness.nemesis.schedule`, injected through the
scenario's `FaultInjector`, always healed) and checkers (`harness.checks`), here applied to
one window at a time while the soak runs:

* a fault window (the fault, then the time to recover) gets failover (C2 HTTP, C3 HTTPS, or
  C4 for a network fault on the link it hit), not-redirected (C6 FTP, C7 SMTP: what was
  addressed to a node that went away errored, nobody else served it) and rejoin (C5);
* a quiet window (no fault in force, recovery over) gets balance (C1);
* at the end: exactly-once (C14 orders, C7 mail) over everything acknowledged, after
  retrying some acknowledged orders with their keys, as a client that lost the answer would.

A window is judged once every request that overlaps it has finished (the client timeout
after its end), then its records are dropped: the soak keeps a window's worth of records,
per-second counts for the timeline, and the records of its worst windows on disk.

    result = Soak(scenario, SoakPlan(minutes=30, seed=7)).run()
    result.verdict        # violated if any window was, else inconclusive if any was, else passed
"""

from __future__ import annotations

import csv
import gzip
import io
import itertools
import json
import math
import random
import shutil
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Collection, Iterable, Iterator
from contextlib import AbstractContextManager
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from harness import checks, nemesis, report
from harness.errors import HarnessError
from harness.faults import FaultEvent, FaultTimeline
from harness.nemesis import NODE_FAULTS, TOXIC_ATTRIBUTES, PlannedFault, Policy
from harness.scenario import Scenario, Thresholds
from harness.traffic.clients import HttpClient
from harness.traffic.load import Load
from harness.traffic.log import RequestLog, RequestRecord
from harness.traffic.stream import ROTATE_BYTES
from harness.verdict import Figures, Missing, Outcome, Verdict, inconclusive, merge

CLIENT_TIMEOUT_S = 5.0  # the clients' own (harness.traffic.clients): a request ends by then
MAX_QUIET_S = 30.0  # a long quiet period is judged in windows of this length
MIN_QUIET_S = 2.0  # shorter quiet periods are not judged on their own, nor ones too short to
# carry the requests balance needs (`Soak.min_quiet_s`)
RETRIED_ORDERS = 20
WORST_KEPT = 5
PER_USER_RATE = 20.0


@dataclass(frozen=True)
class SoakPlan:
    """What `harness soak` and `pytest -m soak --soak-minutes M` run."""

    minutes: float
    seed: int
    nemesis: tuple[str, ...] = ()
    """the faults to draw from; none: those of `nemesis.DEFAULT_NEMESIS` the cluster can inject"""
    policy: Policy = "serial"
    fault_seconds: float = 4.0
    quiet_seconds: float = 8.0
    rate: float = 200.0
    """HTTP and HTTPS requests per second through the entry (FTP, SMTP and orders add a few)"""
    keep_going: bool = False
    keep_logs: bool = False

    @classmethod
    def from_options(cls, minutes: float, seed: int | None, nemesis_csv: str | None,
                     prefix: str = "--", **options: Any) -> "SoakPlan":
        """A plan from command-line options (`harness soak`, or pytest's `--soak-*` with
        `prefix`): the seed drawn if not given; bad input is one sentence naming the option."""
        kinds = tuple(k for k in (nemesis_csv or "").split(",") if k)
        plan = cls(minutes, random_seed() if seed is None else seed, kinds, **options)
        if problems := plan.problems(prefix):
            raise HarnessError(problems[0])
        return plan

    @property
    def duration_s(self) -> float:
        return self.minutes * 60

    def schedule(self, nodes: list[str]) -> list[PlannedFault]:
        return nemesis.schedule(self.seed, self.nemesis or nemesis.DEFAULT_NEMESIS, nodes,
                                self.duration_s, self.fault_seconds, self.quiet_seconds,
                                self.policy)

    def problems(self, prefix: str = "--") -> list[str]:
        """What is wrong with this plan, one sentence each (bad input); `prefix`: how the
        options are spelt (`--soak-` in pytest)."""
        out = []
        if unknown := nemesis.unknown_nemeses(self.nemesis):
            out.append(f"{prefix}nemesis {','.join(unknown)}: no such fault; choose from "
                       f"{', '.join(nemesis.NEMESES)}")
        if self.minutes <= 0:
            out.append(f"{prefix}minutes must be more than 0, not {self.minutes:g}")
        if self.rate <= 0:
            out.append(f"{prefix}rate must be more than 0, not {self.rate:g}")
        if self.fault_seconds <= 0 or self.quiet_seconds < 0:
            out.append("--fault-seconds must be more than 0 and --quiet-seconds not less")
        return out


def random_seed() -> int:
    return random.SystemRandom().randrange(1, 2**31)


# -- windows: what each is judged by (pure) ----------------------------------------------------

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

    @property
    def due(self) -> float:
        """When every request overlapping it has finished."""
        return self.end + CLIENT_TIMEOUT_S + 1.0

    @property
    def outcome(self) -> Outcome | Literal["unjudged"]:
        """Its verdicts' worst; "unjudged" if it had none (nothing it covers is claimed)."""
        return merge(self.verdicts) if self.verdicts else "unjudged"

    def judge(self, records: list[RequestRecord], nodes: list[str], t: Thresholds, unit: str,
              others: Collection[str]) -> None:
        """Its verdicts from the records overlapping it; `others`: nodes under another fault
        meanwhile (their FTP and SMTP errors are not this fault's)."""
        mine = [r for r in records if r.end_mono >= self.start and r.start_mono <= self.end]
        self.requests, self.errors = len(mine), sum(not r.ok for r in mine)
        self.verdicts = (fault_verdicts(self.event, mine, nodes, t, unit, others) if self.event
                         else quiet_verdicts(mine, nodes, t, unit))


def fault_verdicts(event: FaultEvent, records: list[RequestRecord], nodes: list[str],
                   t: Thresholds, unit: str, others: Collection[str] = ()) -> list[Verdict]:
    """The checks a fault's window gets: a node fault is failover for HTTP (C2) and HTTPS (C3),
    not-redirected for FTP (C6) and SMTP (C7), and rejoin (C5); a network fault is failover of
    the protocol on the link it hit: a cut as C2/C3 (the node is gone for that protocol, as in
    the failover scenarios), any other as C4.

    FTP and SMTP users address each node about once a second, so a short fault (a restart)
    may see no session addressed to its node: then the window does not judge C6/C7 and says
    so (`unchecked`); the soak as a whole needs at least one window that did
    (`soak_verdict`)."""
    node, _, link = event.target.partition("/")

    def of(protocol: str) -> list[RequestRecord]:
        return [r for r in records if r.protocol == protocol and r.endpoint not in others]

    def failover(protocol: str, prop: str) -> Verdict:
        return checks.failover(of(protocol), event, error_budget=t.error_budget,
                               max_gap_s=t.max_failover_gap, max_wait_s=t.max_failover_wait,
                               max_latency_s=t.max_failover_latency,
                               min_victim_requests=t.min_victim_requests,
                               min_window_requests=t.min_window_requests, prop=prop)

    if event.kind not in NODE_FAULTS:
        cut = {"http": "C2", "https": "C3"}.get(link, "C4") if event.kind == "down" else "C4"
        return [failover(link, cut)]
    verdicts = [failover(p, prop) for p, prop in (("http", "C2"), ("https", "C3")) if of(p)]
    assert event.end_mono is not None
    verdicts.append(checks.rejoined(of("http"), node, event.end_mono, t.rejoin_bound, nodes,
                                    tolerance=t.rejoin_tolerance, alpha=t.balance_alpha,
                                    unit=unit))
    down = event.applied_mono or event.start_mono
    back = event.healing_mono or event.end_mono
    for protocol, prop in (("ftp", "C6"), ("smtp", "C7")):
        rs = of(protocol)
        if any(r.endpoint == node and down <= r.start_mono <= back for r in rs):
            verdicts.append(checks.not_redirected(rs, node, event, prop=prop))
        elif rs:
            verdicts = [v.noting(f"{prop} {protocol.upper()} not redirected: no session was "
                                 f"addressed to {node} in its {back - down:.1f} s down")
                        for v in verdicts]
    return verdicts


def quiet_verdicts(records: list[RequestRecord], nodes: list[str], t: Thresholds,
                   unit: str) -> list[Verdict]:
    """A quiet period: the entry's HTTP answers are balanced (C1)."""
    entry = [r for r in records if r.protocol == "http" and r.endpoint == "entry" and not r.key]
    return [checks.balance(entry, nodes, tolerance=t.balance_tolerance, alpha=t.balance_alpha,
                           unit=unit)]


def expected_properties(events: Iterable[FaultEvent], protocols: Collection[str],
                        orders: bool) -> set[str]:
    """What a soak with these faults and this traffic must have judged at least once."""
    kinds = {e.kind for e in events}
    node_faults = bool(kinds & set(NODE_FAULTS))
    wanted = {"C1"} | ({"C4"} if kinds - set(NODE_FAULTS) - {"down"} else set())
    if node_faults:
        wanted |= {"C5"} | {prop for p, prop in (("http", "C2"), ("https", "C3"), ("ftp", "C6"),
                                                  ("smtp", "C7")) if p in protocols}
    return wanted | ({"C14"} if orders else set())


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
               "why": " | ".join(v.summary() for v in w.verdicts if not v.passed)}


# -- the run -----------------------------------------------------------------------------------

def traffic_groups(plan: SoakPlan, scenario: Scenario, unit: str) -> list[dict[str, Any]]:
    """Users on every protocol the topology has: HTTP and HTTPS through the entry (60:40 of
    `rate`), FTP and SMTP to each node, and keyed orders when the topology says how."""
    topology = scenario.cluster.topology
    nodes = len(topology.node_ids)
    groups = []
    for protocol, share in (("http", 0.6), ("https", 0.4)):
        if getattr(topology.entry, protocol):
            rate = plan.rate * share
            users = max(nodes, math.ceil(rate / PER_USER_RATE))
            groups.append({"protocol": protocol, "users": users, "rate": rate / users,
                           "fresh_connections": unit == "connection"})
    for protocol, rate in (("ftp", 1.0), ("smtp", 2.0)):
        if all(getattr(n.endpoints, protocol) for n in topology.nodes):
            groups.append({"protocol": protocol, "users": nodes, "rate": rate})
    spec = topology.evidence.side_effects
    if spec is not None and spec.order is not None and topology.entry.http:
        groups.append({"protocol": "http", "call": spec.order.model_dump(), "keyed": True,
                       "users": 2, "rate": 5.0})
    return groups


@dataclass(frozen=True)
class InForce:
    """A fault the soak injected and has yet to heal."""

    heal_at: float
    planned: PlannedFault
    manager: AbstractContextManager[FaultEvent]
    event: FaultEvent


@dataclass
class SoakResult:
    plan: SoakPlan
    schedule: list[PlannedFault]
    windows: list[Window]
    end_verdicts: list[Verdict]
    verdict: Verdict
    t0: float
    per_second: dict[int, Counter[str]]
    events: list[FaultEvent]
    worst_logs: list[Path]
    figures: dict[str, float | int]
    stopped_early: bool

    def table_csv(self) -> str:
        out = io.StringIO()
        rows = list(window_rows(self.windows, self.t0))
        writer = csv.DictWriter(out, fieldnames=list(rows[0]) if rows else ["window"])
        writer.writeheader()
        writer.writerows(rows)
        return out.getvalue()


class Soak:
    """Runs a `SoakPlan` in a scenario's world (its cluster, faults, network engine, evidence)."""

    def __init__(self, scenario: Scenario, plan: SoakPlan,
                 progress: Callable[[str], None] = lambda line: None,
                 progress_every_s: float = 10.0) -> None:
        self.scenario = scenario
        self.progress, self.progress_every_s = progress, progress_every_s
        self.nodes = scenario.nodes
        if not plan.nemesis:
            plan = replace(plan, nemesis=tuple(k for k in nemesis.DEFAULT_NEMESIS if not self._missing(k)))
        self.plan = plan
        self.schedule = plan.schedule(self.nodes)
        self.windows: list[Window] = []
        self.pending: list[Window] = []
        self.buffer: list[RequestRecord] = []
        self.per_second: dict[int, Counter[str]] = defaultdict(Counter)
        self.active: list[InForce] = []
        self.calm_since: float | None = None
        self.worst: list[tuple[tuple[int, int], Path]] = []
        self.total_requests = 0

    def _missing(self, kind: str) -> str | None:
        """Why this cluster cannot inject `kind` (and heal it), or None."""
        if kind in NODE_FAULTS:
            field_ = self.scenario.cluster.missing_for_fault(kind)
            return f"needs `{field_}` in the topology" if field_ else None
        if kind not in nemesis.NEMESES:
            return None  # SoakPlan.problems names it
        return next(filter(None, (self.scenario.network.missing(kind, link)
                                  for link in nemesis.LINKS)), None)

    def missing(self) -> list[str]:
        """What of the plan's nemesis cannot be injected here: refused before anything runs."""
        if not self.plan.nemesis:
            return ["no fault of the default nemesis can be injected on this cluster"]
        return [f"--nemesis {k} {why}" for k in self.plan.nemesis if (why := self._missing(k))]

    def run(self) -> SoakResult:
        if problems := self.plan.problems() + self.missing():
            raise HarnessError(problems[0])
        s, plan = self.scenario, self.plan
        self.unit = s.balancing_unit("http")
        self.groups = traffic_groups(plan, s, self.unit)
        http_rate = sum(g["users"] * g["rate"] for g in self.groups
                        if g["protocol"] == "http" and not g.get("keyed"))
        t = s.thresholds
        needed = checks.observations_needed(len(self.nodes), t.balance_tolerance, t.balance_alpha)
        self.min_quiet_s = max(MIN_QUIET_S, 1.5 * needed * len(self.nodes) / max(http_rate, 1e-9))
        load = Load(s.cluster.topology, s.directory, verify=s.cluster.ca_file,
                    processes=s.thresholds.load_processes, groups=self.groups, duration_s=plan.duration_s,
                    max_requests=2**62, rotate_bytes=ROTATE_BYTES)
        self.progress(f"soak: seed {plan.seed}, {len(self.schedule)} faults over "
                      f"{plan.minutes:g} min ({plan.policy}; {', '.join(plan.nemesis)})")
        stopped_early = False
        with load:
            self.t0 = time.monotonic()
            self.calm_since = self.t0
            self.streams = load.streams()
            try:
                stopped_early = self._soak(load)
                if not stopped_early:
                    self._close_quiet(time.monotonic())
            finally:
                self._heal_all()
                if stopped_early:
                    load.stop()
        self._pump()
        for window in sorted(self.pending, key=lambda w: w.due):
            if not stopped_early:
                self._judge(window)
        end_verdicts = [] if stopped_early else self._claimed(self._end_checks())
        expected = {p for p in expected_properties(s.faults.timeline.events,
                                                   {g["protocol"] for g in self.groups},
                                                   any(g.get("keyed") for g in self.groups))
                    if s.cluster.topology.claims_property(p)}
        verdict = soak_verdict(self.windows, end_verdicts, stopped_early, plan.seed, expected)
        disk = sum(st.bytes_on_disk() for st in self.streams)
        for stream in self.streams:
            stream.close()
        if not plan.keep_logs:
            for path in load.log_paths:
                for part in path.parent.glob(f"{path.name}.*"):
                    part.unlink()
        elapsed = time.monotonic() - self.t0
        return SoakResult(plan, self.schedule, self.windows, end_verdicts, verdict, self.t0,
                          dict(self.per_second), list(s.faults.timeline.events),
                          [p for _, p in sorted(self.worst, reverse=True)],
                          {"requests": self.total_requests, "elapsed_s": round(elapsed, 1),
                           "requests_per_s": round(self.total_requests / max(elapsed, 1e-9), 1),
                           "log_bytes_on_disk": disk}, stopped_early)

    def _soak(self, load: Load) -> bool:
        """The nemesis loop; True if it stopped at a violation."""
        upcoming = list(self.schedule)
        end = self.t0 + self.plan.duration_s
        next_progress = self.t0 + self.progress_every_s
        while time.monotonic() < end and load.running():
            now = time.monotonic()
            for fault in [a for a in self.active if a.heal_at <= now]:
                self._heal(fault)
            while upcoming and self.t0 + upcoming[0].at <= now:
                self._inject(upcoming.pop(0))
            self._calm(now)
            self._pump()
            for window in [w for w in self.pending if w.due <= time.monotonic()]:
                self._judge(window)
                if window.outcome == "violated" and not self.plan.keep_going:
                    return True
            if now >= next_progress:
                self.progress(self._status(now))
                next_progress += self.progress_every_s
            time.sleep(0.2)
        return False

    def _status(self, now: float) -> str:
        done = Counter(w.outcome for w in self.windows)
        elapsed, total = now - self.t0, self.plan.duration_s
        recent = [sum(self.per_second.get(int(now - self.t0) - k, Counter()).values()) for k in range(2, 7)]
        return (f"soak {elapsed / 60:4.1f}/{total / 60:g} min · faults "
                f"{len(self.scenario.faults.timeline.events)}/{len(self.schedule)} · windows judged "
                f"{len(self.windows)} · violated {done['violated']} · inconclusive "
                f"{done['inconclusive']} · {sum(recent) / len(recent):.0f} req/s")

    def _inject(self, planned: PlannedFault) -> None:
        options = {} if planned.link is None else {"link": planned.link, **TOXIC_ATTRIBUTES.get(planned.kind, {})}
        self._close_quiet(time.monotonic())
        manager = self.scenario.fault(planned.kind, planned.node, **options)
        event = manager.__enter__()
        self.active.append(InForce(self.t0 + planned.until, planned, manager, event))
        self.calm_since = None

    def _heal(self, fault: InForce) -> None:
        """Heal it and open its window: the fault, then the recovery the checks allow."""
        self.active.remove(fault)
        planned, event = fault.planned, fault.event
        fault.manager.__exit__(None, None, None)
        assert event.end_mono is not None
        # the failover check's look-back before, its settling (C4) or the rejoin bound (C5) after
        recovery = self.scenario.thresholds.rejoin_bound + 1 if planned.kind in NODE_FAULTS else 1.0
        self.pending.append(Window(0, f"{planned.kind} {event.target}", event.start_mono - 1.0,
                                   event.end_mono + recovery, event))

    def _heal_all(self) -> None:
        for fault in list(self.active):
            self._heal(fault)

    def _calm(self, now: float) -> None:
        """Open and close quiet windows: no fault in force and every recovery over."""
        busy_until = max((w.end for w in self.pending if w.event), default=0.0)
        if self.active:
            self._close_quiet(min(a.event.start_mono for a in self.active))
            return
        if self.calm_since is None:
            self.calm_since = max(now, busy_until)
        if now - self.calm_since >= max(MAX_QUIET_S, 2 * self.min_quiet_s):
            self._close_quiet(now)
            self.calm_since = now

    def _close_quiet(self, until: float) -> None:
        if self.calm_since is not None and until - self.calm_since >= self.min_quiet_s:
            self.pending.append(Window(0, "quiet", self.calm_since, until))
        self.calm_since = None

    def _pump(self) -> None:
        """New records into the window buffer and the per-second counts; drop what no
        pending window needs."""
        for stream in self.streams:
            while batch := stream.read_new():
                self.total_requests += len(batch)
                self.buffer += batch
                for r in batch:
                    self.per_second[int(r.start_mono - self.t0)][r.node if r.ok and r.node else "failed"] += 1
        starts = [w.start for w in self.pending] + [a.event.start_mono - 1.0 for a in self.active]
        if self.calm_since is not None:
            starts.append(self.calm_since)
        horizon = min(starts, default=time.monotonic() - CLIENT_TIMEOUT_S - 2)
        self.buffer = [r for r in self.buffer if r.end_mono >= horizon]

    def _judge(self, window: Window) -> None:
        self.pending.remove(window)
        others = {e.target.partition("/")[0] for e in self.scenario.faults.timeline.events
                  if window.event is not None and e is not window.event
                  and e.start_mono <= window.end and (e.end_mono or float("inf")) >= window.start}
        window.judge(self.buffer, self.nodes, self.scenario.thresholds, self.unit, others)
        window.verdicts = self._claimed(window.verdicts)
        window.number = len(self.windows) + 1
        self.windows.append(window)
        self._keep_if_worst(window)
        if window.outcome in ("violated", "inconclusive"):
            bad = next(v for v in window.verdicts if v.outcome == window.outcome)
            self.progress(f"soak window {window.number} ({window.what}): {window.outcome.upper()}: "
                          f"{bad.summary()}")

    def _claimed(self, verdicts: list[Verdict]) -> list[Verdict]:
        """Only the properties the topology claims are judged, as in the scenarios."""
        return [v for v in verdicts if self.scenario.cluster.topology.claims_property(v.prop)]

    def _keep_if_worst(self, window: Window) -> None:
        """The records of the worst windows, to attach: violated before inconclusive before
        the most errors."""
        score = ({"violated": 2, "inconclusive": 1}.get(window.outcome, 0), window.errors)
        if len(self.worst) >= WORST_KEPT and score <= min(self.worst)[0]:
            return
        path = self.scenario.directory / f"window-{window.number:04d}.jsonl.gz"
        with gzip.open(path, "wt") as f:
            for r in self.buffer:
                if r.end_mono >= window.start and r.start_mono <= window.end:
                    f.write(r.to_json() + "\n")
        self.worst.append((score, path))
        if len(self.worst) > WORST_KEPT:
            dropped = min(self.worst)
            self.worst.remove(dropped)
            dropped[1].unlink(missing_ok=True)

    def _end_checks(self) -> list[Verdict]:
        """Exactly-once over everything acknowledged (read back from the streamed logs),
        after retrying some acknowledged orders with their keys."""
        s = self.scenario
        spec = s.cluster.topology.evidence.side_effects
        if spec is None:
            return []

        def acknowledged(predicate: Callable[[RequestRecord], bool]) -> Iterator[RequestRecord]:
            for stream in self.streams:
                yield from (r for r in stream.records() if r.ok and r.key and predicate(r))

        retries = RequestLog()
        if spec.order is not None:
            http = HttpClient(s.cluster.topology, retries, verify=s.cluster.ca_file)
            for record in reservoir(acknowledged(lambda r: r.protocol == "http"), RETRIED_ORDERS,
                                    self.plan.seed):  # the client lost these answers: sends again
                http.send(spec.order, values={"key": record.key or ""}, key=record.key)
        recorded = s.recorded_side_effects(spec)
        verdicts = []
        if spec.order is not None:
            verdicts.append(checks.exactly_once(
                itertools.chain(acknowledged(lambda r: r.protocol == "http"), retries), recorded,
                kind="order"))
        if any(g["protocol"] == "smtp" for g in self.groups):
            verdicts.append(checks.exactly_once(acknowledged(lambda r: r.protocol == "smtp"),
                                                recorded, kind="mail", prop="C7"))
        return verdicts


def reservoir(items: Iterable[RequestRecord], k: int, seed: int) -> list[RequestRecord]:
    """`k` items drawn uniformly from a stream of unknown length, holding only `k`."""
    rng = random.Random(seed)
    out: list[RequestRecord] = []
    for i, item in enumerate(items):
        if i < k:
            out.append(item)
        elif (j := rng.randrange(i + 1)) < k:
            out[j] = item
    return out


def write_report(result: SoakResult, directory: Path) -> dict[str, Path]:
    """The soak's report files: the timeline plot, the per-window table, the schedule and the
    faults injected, a JSON summary and the worst windows' request logs; `harness soak` leaves them in its report
    directory, the pytest entry attaches them to Allure."""
    directory.mkdir(parents=True, exist_ok=True)
    plan, verdict = result.plan, result.verdict
    violated = [(w.start, w.end) for w in result.windows if w.outcome == "violated"]
    files = {
        "timeline": report.soak_timeline_png(
            result.per_second, result.events, violated, result.t0, directory / "soak-timeline.png",
            f"soak of {plan.minutes:g} min, seed {plan.seed}: {verdict.outcome}"),
        "windows": directory / "soak-windows.csv",
        "schedule": directory / "soak-schedule.txt",
        "summary": directory / "soak-summary.json",
        "fault timeline": directory / "soak-faults.jsonl",
    }
    FaultTimeline(result.events).write(files["fault timeline"])
    files["windows"].write_text(result.table_csv())
    files["schedule"].write_text(f"seed {plan.seed}, policy {plan.policy}, nemesis "
                                 f"{','.join(plan.nemesis)}\n" + "".join(f"{f}\n" for f in result.schedule))
    files["summary"].write_text(json.dumps({
        "verdict": verdict.outcome, "explanation": verdict.summary(), "seed": plan.seed,
        "plan": asdict(plan), "figures": result.figures,
        "windows": dict(Counter(w.outcome for w in result.windows)),
        "end_checks": [v.summary() for v in result.end_verdicts],
        "stopped_early": result.stopped_early}, indent=1))
    for log in result.worst_logs:
        if log.exists():
            files[log.stem] = Path(shutil.copy(log, directory / log.name))
    return files
