"""A world's traffic: clients that write the request log, and Locust loads around its faults.

Loads run where `--load-processes` and `--load-workers` say (`harness.traffic.load.Load`);
their records join the world's request log when they end, and the workers' clocks are kept,
so that a verdict against the fault timeline is not given on times it cannot trust.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path
from typing import Any

from harness import checks
from harness.cluster import Cluster
from harness.config import Protocol as WireProtocol
from harness.errors import ConfigurationError
from harness.evidence import Call
from harness.history.timeline import FaultTimeline
from harness.history.requests import RequestLog, RequestRecord
from harness.judge import Judge
from harness.thresholds import Thresholds
from harness.traffic.clients import FtpClient, HttpClient, SmtpClient
from harness.traffic.load import Load
from harness.traffic.plan import Distributed
from harness.verdict import Missing
from harness.world.reporter import Reporter

EVIDENCE_POLL_S = 0.25  # how often a load that runs until its evidence is in looks
WARM_UP_S = 1.0  # load before a fault, for the victim to be chosen by its traffic
TRAFFIC_MARGIN_S = 0.5  # load after a fault's window, so that requests after it are seen
FAULT_LOAD_CAP_S = 120.0  # the longest a fault's load may run (a fault whose commands hang)


class Traffic:
    def __init__(self, cluster: Cluster, thresholds: Thresholds, directory: Path, log: RequestLog,
                 timeline: FaultTimeline, judge: Judge, report: Reporter,
                 workers: Distributed | None = None,
                 watch: Callable[[Load], AbstractContextManager[None]] = lambda load: nullcontext()) -> None:
        """`watch`: what watches a steady load while it runs (the run's stop conditions)."""
        self.cluster, self.thresholds, self.directory = cluster, thresholds, directory
        self.log, self.timeline, self.judge, self.report = log, timeline, judge, report
        self.workers, self.watch = workers, watch
        self.loads: list[Load] = []
        self.running_load: Load | None = None

    def http(self) -> HttpClient:
        return HttpClient(self.cluster.topology, self.log, verify=self.cluster.ca_file)

    def ftp(self) -> FtpClient:
        return FtpClient(self.cluster.topology, self.log)

    def smtp(self) -> SmtpClient:
        return SmtpClient(self.cluster.topology, self.log)

    def expect_set_up(self, record: RequestRecord, fix: str) -> RequestRecord:
        """A request made before any fault must succeed: if it does not, the harness cannot
        talk to this cluster as configured, which is a configuration error, not a verdict."""
        if not record.ok:
            raise ConfigurationError(
                f"before any fault, {record.protocol.upper()} {record.operation} on "
                f"{record.endpoint} failed ({record.error}); check {fix}")
        return record

    def new_load(self, **plan: Any) -> Load:
        """A load of this world's cluster, made where `--load-processes` and `--load-workers`
        say (`Load` takes the plan); its workers' clocks are kept."""
        load = Load(self.cluster.topology, self.directory, verify=self.cluster.ca_file,
                    processes=self.thresholds.load_processes, workers=self.workers, **plan)
        self.loads.append(load)
        return load

    @contextmanager
    def steady_load(self, seconds: float, protocol: WireProtocol = "http", **plan: Any) -> Iterator[Load]:
        """Traffic through the entry point (by default) for up to `seconds`, watched by the
        run's stop conditions; its records join the request log at the end."""
        t = self.thresholds
        plan = {"users": t.load_users, "rate": t.load_rate, **plan}
        if isinstance(plan.get("call"), Call):
            plan["call"] = plan["call"].model_dump()
        with self.report.step(f"steady {protocol} load: {plan['users']} users x {plan['rate']}/s "
                              f"for up to {seconds:.0f} s"):
            load = self.new_load(protocol=protocol, duration_s=seconds, **plan)
            with load, self.watch(load):
                self.running_load = load
                try:
                    yield load
                finally:
                    self.running_load = None
            self.log.extend(load.records)

    @contextmanager
    def load_through_fault(self, protocol: WireProtocol = "http", **plan: Any) -> Iterator[Load]:
        """Steady load around the fault the body injects: a second's warm-up first, then,
        after the body, on until the fault's window is over (its end plus the settling the
        failover check judges), however long the fault's own actions took: a kill and
        restart through an operator's slow commands must not outlast the traffic."""
        with self.steady_load(seconds=FAULT_LOAD_CAP_S, protocol=protocol, **plan) as load:
            time.sleep(WARM_UP_S)
            yield load
            events = self.timeline.events
            until = (events[-1].end_mono or time.monotonic()) if events else time.monotonic()
            time.sleep(max(0.0, until + checks.FAILOVER_SETTLE_S + TRAFFIC_MARGIN_S - time.monotonic()))
            load.end_now()

    def load_until(self, load: Load, enough: Callable[[list[RequestRecord]], bool]) -> None:
        """Keep `load` running until the records so far hold what a check needs, then end it;
        the load's own length caps the wait. A stopping rule that looks only at how much was
        seen, never at what the check will judge, leaves the verdict unbiased."""
        while load.running():
            if enough(load.records_so_far()):
                load.end_now()
                return
            time.sleep(EVIDENCE_POLL_S)

    def load_until_rejoin_judgeable(self, load: Load, node: str, back_at: float) -> None:
        """Until the rejoin check has its evidence: the node back for the bound with enough
        answers since, or the bound missed (`--rejoin-load-cap` caps the load)."""
        nodes = self.cluster.node_ids
        self.load_until(load, lambda rs: self.judge.rejoin_judgeable(rs, node, back_at, nodes))

    def load_until_served(self, load: Load, answers: int) -> None:
        """Until the nodes have served `answers` successful requests between them, however
        slowly the machine lets the load run (a busy CI host made three quarters of the rate)."""
        nodes = self.cluster.node_ids
        self.load_until(load, lambda rs: sum(checks.served(rs, nodes).values()) >= answers)

    def seconds_for(self, requests: int) -> float:
        """How long the steady load needs to make `requests` at the planned rate (a quarter
        more, for ramp-up and jitter): the plan, and with `load_until_served`, a cap's unit."""
        t = self.thresholds
        return requests / (t.load_users * t.load_rate) * 1.25 + 1

    def clock_problem(self) -> Missing | None:
        """Load workers' clocks known less well than the checks that compare request times
        with the fault timeline resolve (`checks.CLOCK_RESOLUTION_S`): such a verdict is not
        given, and this says why."""
        clocks = [c for load in self.loads for c in load.clocks]
        unknown = [c.worker for c in clocks if c.error_s is None]
        if unknown:
            return Missing(f"the clock of load worker {unknown[0]} was not measured again at "
                           "the load's end, so its records' times are not bounded",
                           "keep the workers running to the end of each load")
        worst = max(clocks, key=lambda c: c.error_s or 0.0, default=None)
        if worst is not None and worst.error_s is not None and worst.error_s > checks.CLOCK_RESOLUTION_S:
            return Missing(f"load worker {worst.worker}'s clock was known to within "
                           f"{worst.error_s * 1000:.1f} ms (round trip {worst.start.bound_s * 2000:.1f} ms, "
                           f"drift {(worst.drift_s or 0.0) * 1000:.1f} ms), more than the "
                           f"{checks.CLOCK_RESOLUTION_S * 1000:g} ms the checks against the fault "
                           "timeline resolve", "load workers closer to this machine, or with "
                           "disciplined clocks (NTP)")
        return None

    def report_clocks(self) -> None:
        clocks = [c for load in self.loads for c in load.clocks]
        if not clocks:
            return
        worst = max(c.error_s or 0.0 for c in clocks)
        self.report.parameter("load worker clocks: error bound (ms)", round(worst * 1000, 3))
        self.report.attach("load worker clocks", "\n".join(
            f"{c.worker}: offset {c.start.offset_s:+.6f} s, bound {c.start.bound_s * 1000:.3f} ms"
            f" at the start; drift {'not measured' if c.drift_s is None else f'{c.drift_s * 1000:.3f} ms'}"
            f" by the end; error at most {'unknown' if c.error_s is None else f'{c.error_s * 1000:.3f} ms'}"
            for c in clocks))
