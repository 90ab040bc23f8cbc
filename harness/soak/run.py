"""The soak's loop: load on every protocol, the nemesis's faults injected and healed on time,
the streamed logs followed, and each window judged as soon as its requests are all in.

The soak keeps a window's worth of records, per-second counts for the timeline, and the
records of its worst windows on disk, so memory stays flat however long it runs.
"""

from __future__ import annotations

import csv
import gzip
import io
import itertools
import math
import random
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from harness import checks
from harness.config import BalancingUnit
from harness.errors import HarnessError
from harness.fault_kinds import DEFAULT_NEMESIS, WEB_LINKS
from harness.history.timeline import FaultEvent, FaultKind
from harness.history.requests import RequestLog, RequestRecord
from harness.history.stream import ROTATE_BYTES
from harness.nemesis import PlannedFault
from harness.properties import Property
from harness.soak.plan import SoakPlan
from harness.soak.windows import CLIENT_TIMEOUT_S, Window, expected_properties, soak_verdict, window_rows
from harness.traffic.clients import HttpClient
from harness.traffic.load import Load
from harness.safety import Aborted, NotHealthy, stop_run
from harness.verdict import Missing, Verdict, inconclusive
from harness.world import World
from harness.world.health import STOP_CHECK_S

MAX_QUIET_S = 30.0  # a long quiet period is judged in windows of this length
RECOVERY_BOUNDS = 3  # rejoin bounds a cluster found unhealthy before a fault may take to recover
MIN_QUIET_S = 2.0  # shorter quiet periods are not judged on their own, nor ones too short to
# carry the requests balance needs (`Soak.min_quiet_s`)
RETRIED_ORDERS = 20
WORST_KEPT = 5
PER_USER_RATE = 20.0


def traffic_groups(plan: SoakPlan, world: World, unit: BalancingUnit) -> list[dict[str, Any]]:
    """Users on every protocol the topology has: HTTP and HTTPS through the entry (60:40 of
    `rate`), FTP and SMTP to each node, and keyed orders when the topology says how."""
    topology = world.cluster.topology
    nodes = len(topology.node_ids)
    groups = []
    for protocol, share in (("http", 0.6), ("https", 0.4)):
        if getattr(topology.entry, protocol):
            rate = plan.total_rate * share
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
    figures: dict[str, object]
    stopped_early: bool
    aborted: str | None = None
    """why the soak was aborted (the operator, SIGTERM, a stop condition), if it was"""

    def table_csv(self) -> str:
        out = io.StringIO()
        rows = list(window_rows(self.windows, self.t0))
        writer = csv.DictWriter(out, fieldnames=list(rows[0]) if rows else ["window"])
        writer.writeheader()
        writer.writerows(rows)
        return out.getvalue()


class Soak:
    """Runs a `SoakPlan` in a world (its cluster, faults, network engine, evidence)."""

    def __init__(self, world: World, plan: SoakPlan,
                 progress: Callable[[str], None] = lambda line: None,
                 progress_every_s: float = 10.0) -> None:
        self.world = world
        self.progress, self.progress_every_s = progress, progress_every_s
        self.nodes = world.nodes
        if not plan.nemesis:
            plan = replace(plan, nemesis=tuple(k for k in DEFAULT_NEMESIS if not self._missing(k)))
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

    def _missing(self, kind: FaultKind) -> str | None:
        """Why this cluster cannot inject `kind` (and heal it), or None."""
        if kind.takes_the_node:
            field_ = self.world.cluster.missing_for_fault(kind)
            return f"needs `{field_}` in the topology" if field_ else None
        return next(filter(None, (self.world.nemesis.network.missing(kind, link)
                                  for link in WEB_LINKS)), None)

    def missing(self) -> list[str]:
        """What of the plan's nemesis cannot be injected here: refused before anything runs."""
        if not self.plan.nemesis:
            return ["no fault of the default nemesis can be injected on this cluster"]
        return [f"--nemesis {k} {why}" for k in self.plan.nemesis if (why := self._missing(k))]

    def run(self) -> SoakResult:
        if problems := self.plan.problems() + self.missing():
            raise HarnessError(problems[0])
        s, plan = self.world, self.plan
        self.unit = s.victims.balancing_unit("http")
        self.groups = traffic_groups(plan, s, self.unit)
        http_rate = sum(g["users"] * g["rate"] for g in self.groups
                        if g["protocol"] == "http" and not g.get("keyed"))
        needed = s.judge.observations_needed(len(self.nodes))
        self.min_quiet_s = max(MIN_QUIET_S, 1.5 * needed * len(self.nodes) / max(http_rate, 1e-9))
        load = s.traffic.new_load(groups=self.groups, duration_s=plan.duration_s, max_requests=2**62,
                                  rotate_bytes=ROTATE_BYTES)
        self.progress(f"soak: seed {plan.seed}, {len(self.schedule)} faults over "
                      f"{plan.minutes:g} min ({plan.policy}; {', '.join(plan.nemesis)})")
        stopped_early, aborted = False, None
        with load:
            self.t0 = time.monotonic()
            self.calm_since = self.t0
            self.streams = load.streams()
            try:
                stopped_early = self._soak(load)
                if not stopped_early:
                    self._close_quiet(time.monotonic())
            except Aborted as e:  # the operator, SIGTERM, or a stop condition: heal, stop, report
                stopped_early, aborted = True, e.why
            finally:
                self._heal_all()
                if stopped_early:
                    load.stop()
        self._pump()
        for window in sorted(self.pending, key=lambda w: w.due):
            if not stopped_early:
                self._judge(window)
        end_verdicts = [] if stopped_early else self._claimed(self._end_checks())
        expected = {p for p in expected_properties(s.nemesis.timeline.events,
                                                   {g["protocol"] for g in self.groups},
                                                   any(g.get("keyed") for g in self.groups))
                    if s.cluster.topology.claims_property(p)}
        verdict = soak_verdict(self.windows, end_verdicts, stopped_early, plan.seed, expected)
        if aborted is not None:
            verdict = inconclusive(verdict.prop, "soak", [Missing(
                f"ABORTED: {aborted}; every fault in force was healed and the load stopped",
                "run it again once the cluster is healthy")], verdict.figures)
        if (clocks := s.traffic.clock_problem()) is not None and s.nemesis.timeline.events:
            # the windows compared load workers' times with the faults': not to be trusted
            verdict = inconclusive(verdict.prop, "soak", [clocks], verdict.figures)
        disk = sum(st.bytes_on_disk() for st in self.streams)
        for stream in self.streams:
            stream.close()
        if not plan.keep_logs:
            for path in load.log_paths:
                for part in path.parent.glob(f"{path.name}.*"):
                    part.unlink()
        elapsed = time.monotonic() - self.t0
        return SoakResult(plan, self.schedule, self.windows, end_verdicts, verdict, self.t0,
                          dict(self.per_second), list(s.nemesis.timeline.events),
                          [p for _, p in sorted(self.worst, reverse=True)],
                          {"requests": self.total_requests, "elapsed_s": round(elapsed, 1),
                           "requests_per_s": round(self.total_requests / max(elapsed, 1e-9), 1),
                           "log_bytes_on_disk": disk, **self._clocks(load)}, stopped_early, aborted)

    @staticmethod
    def _clocks(load: Load) -> dict[str, object]:
        """How well each load worker's clock was known (a distributed load), for the report."""
        if not load.clocks:
            return {}
        return {"load_workers": [{"worker": c.worker, "offset_s": round(c.start.offset_s, 6),
                                  "error_ms": None if c.error_s is None else round(c.error_s * 1000, 3)}
                                 for c in load.clocks]}

    def _soak(self, load: Load) -> bool:
        """The nemesis loop; True if it stopped at a violation."""
        upcoming = list(self.schedule)
        end = self.t0 + self.plan.duration_s
        next_progress = self.t0 + self.progress_every_s
        next_stop_check = self.t0 + STOP_CHECK_S
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
            if now >= next_stop_check:
                if why := self._stop_condition(now):
                    stop_run(why)
                next_stop_check = now + STOP_CHECK_S
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
                f"{len(self.world.nemesis.timeline.events)}/{len(self.schedule)} · windows judged "
                f"{len(self.windows)} · violated {done['violated']} · inconclusive "
                f"{done['inconclusive']} · {sum(recent) / len(recent):.0f} req/s")

    def _inject(self, planned: PlannedFault) -> None:
        """The planned fault, unless the cluster is not healthy enough to take it: then a
        window says "not run" with what was seen, and the soak goes on only if the cluster
        recovers within the bound (else it stops, every fault healed)."""
        self._close_quiet(time.monotonic())
        manager = self.world.nemesis.fault(planned.kind, planned.node, planned.link)
        try:
            event = manager.__enter__()
        except NotHealthy as e:
            now = time.monotonic()
            self.windows.append(Window(len(self.windows) + 1, f"{planned.kind} {planned.node}", now, now,
                                       not_run=str(e)))
            self.progress(f"soak window {len(self.windows)}: {e}")
            bound = self.world.thresholds.rejoin_bound * RECOVERY_BOUNDS
            if wrong := self.world.health.await_healthy(bound):
                stop_run(f"the cluster did not recover within {bound:g} s: {'; '.join(wrong)}")
            return
        self.active.append(InForce(self.t0 + planned.until, planned, manager, event))
        self.calm_since = None

    def _stop_condition(self, now: float) -> str | None:
        """Why the soak must stop now (`StopWatch.why`), its own faults in force or
        recovering set aside."""
        recovering = {w.event.node for w in self.pending if w.event is not None and w.end >= now}
        return self.world.stop_watch.why(now, self.buffer, self.world.nemesis.in_force() | recovering)

    def _heal(self, fault: InForce) -> None:
        """Heal it and open its window: the fault, then the recovery the checks allow."""
        self.active.remove(fault)
        planned, event = fault.planned, fault.event
        fault.manager.__exit__(None, None, None)
        assert event.end_mono is not None
        # the failover check's look-back before; after, its settling (C4) or, for a fault that
        # took the node away from clients (a kill, a cut of its link), the rejoin bound (C5):
        # a balancer keeps such a node out for its fail timeout, and the quiet period after it
        # judges balance, which a node not yet back in rotation would make look unfair
        recovery = self.world.thresholds.rejoin_bound + 1 if event.unreachable else 1.0
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
        others = {e.node for e in self.world.nemesis.timeline.events
                  if window.event is not None and e is not window.event
                  and e.start_mono <= window.end and (e.end_mono or float("inf")) >= window.start}
        window.judge(self.buffer, self.nodes, self.world.judge, self.unit, others)
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
        return [v for v in verdicts if self.world.cluster.topology.claims_property(v.prop)]

    def _keep_if_worst(self, window: Window) -> None:
        """The records of the worst windows, to attach: violated before inconclusive before
        the most errors."""
        score = ({"violated": 2, "inconclusive": 1}.get(window.outcome, 0), window.errors)
        if len(self.worst) >= WORST_KEPT and score <= min(self.worst)[0]:
            return
        path = self.world.directory / f"window-{window.number:04d}.jsonl.gz"
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
        s = self.world
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
        recorded = s.evidence.side_effects(spec)
        verdicts = []
        if spec.order is not None:
            verdicts.append(checks.exactly_once(
                itertools.chain(acknowledged(lambda r: r.protocol == "http"), retries), recorded,
                kind="order"))
        if any(g["protocol"] == "smtp" for g in self.groups):
            verdicts.append(checks.exactly_once(acknowledged(lambda r: r.protocol == "smtp"),
                                                recorded, kind="mail", prop=Property.C7))
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
