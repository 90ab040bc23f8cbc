"""One run's world: a cluster, its history, and the roles a scenario composes.

Jepsen's test map, without pytest: the scenarios (through the `scenario` fixture of
`harness.plugin`), the soak and the CLI all act through a `World`, which holds what they
share (the cluster, the thresholds, the request log, the observations, the report) and one
small object per job, as testcontainers has one small class per role:

    world.traffic    clients and Locust loads writing the request log (`traffic.py`)
    world.victims    which node a fault hits, what the entry balances (`victims.py`)
    world.nemesis    faults injected on a healthy cluster and always healed (`nemesis.py`)
    world.health     the steady state a fault needs, the blast radius (`health.py`)
    world.evidence   what client traffic cannot show, read and recorded (`evidence.py`)

and judges: `check` files a verdict's figures in the report and raises unless it passed (a
contract violation, or inconclusive: each its own category). What a world cannot do with
its cluster is `NotApplicable`, which the pytest adapter makes a skip naming the topology
field that would enable it.
"""

from __future__ import annotations

import json
from pathlib import Path

from harness import report
from harness.checks import FAILOVER_SETTLE_S
from harness.cluster import Cluster
from harness.injector import FaultInjector, NetworkEngine, network_engine
from harness.history.observations import ObservationLog
from harness.history.requests import RequestLog
from harness.judge import Judge
from harness.properties import Property
from harness.safety import StopConditions
from harness.thresholds import Thresholds
from harness.traffic.plan import Distributed
from harness.verdict import Verdict, inconclusive
from harness.world.evidence import EvidenceReader
from harness.world.health import Health, StopWatch
from harness.world.nemesis import Nemesis
from harness.world.reporter import AttachmentKind, Reporter, Unreported
from harness.world.traffic import Traffic
from harness.world.victims import Victims

__all__ = ["AttachmentKind", "Reporter", "Unreported", "World"]


class World:
    def __init__(self, cluster: Cluster, thresholds: Thresholds, directory: Path,
                 props: tuple[Property, ...] = (), network: NetworkEngine | None = None,
                 reporter: Reporter | None = None, workers: Distributed | None = None,
                 stops: StopConditions = StopConditions()) -> None:
        """`props`: the properties this world's scenario proves, for messages; `network`:
        what injects network faults (`--network-faults`; default auto); `workers`: load
        workers on other machines make its loads (`--load-workers`), else local processes;
        `stops`: the stop conditions its steady loads are watched by."""
        self.cluster, self.thresholds, self.directory, self.props = cluster, thresholds, directory, props
        self.report: Reporter = reporter or Unreported()
        self.judge = Judge(thresholds)
        self.log = RequestLog()
        self.observations = ObservationLog()
        self.verdicts: list[Verdict] = []
        injector = FaultInjector(cluster)
        self.traffic = Traffic(cluster, thresholds, directory, self.log, injector.timeline,
                               self.judge, self.report, workers,
                               watch=lambda load: self.stop_watch.watching(load.records_so_far, self.ours))
        self.evidence = EvidenceReader(cluster, directory, self.observations, self.report, self.who)
        self.health = Health(cluster, thresholds, injector, self.evidence,
                             lambda: self.traffic.running_load)
        self.nemesis = Nemesis(cluster, thresholds, injector, network or network_engine(cluster, "auto"),
                               self.health, self.evidence, self.report, self.who)
        self.victims = Victims(cluster, thresholds, self.report, self.traffic.expect_set_up)
        self.stop_watch = StopWatch(self.health, stops)

    def ours(self, now: float) -> set[str]:
        """The nodes under this world's faults, or recovering from one (healed within the
        rejoin bound and the failover check's settling): the stop conditions set them aside."""
        recovery = self.thresholds.rejoin_bound + FAILOVER_SETTLE_S
        return self.nemesis.in_force() | {e.node for e in self.nemesis.timeline.events
                                          if e.end_mono is not None and e.end_mono >= now - recovery}

    @property
    def nodes(self) -> list[str]:
        return self.cluster.node_ids

    @property
    def who(self) -> str:
        return "/".join(self.props) or "this scenario"

    def unchecked(self) -> list[str]:
        """What this world's traffic could not show, from what it drove."""
        notes = []
        if self.cluster.ca_file is False and any(r.protocol == "https" for r in self.log):
            notes.append("certificates not verified (tls.insecure)")
        return notes

    def check(self, verdict: Verdict) -> Verdict:
        """Report a verdict's figures; raise unless it passed. A verdict that compared
        request times with the fault timeline is not given when load workers' clocks were
        known less well than it resolves."""
        verdict = verdict.noting(*self.unchecked())
        clocks = self.traffic.clock_problem() if self.nemesis.timeline.events else None
        if clocks is not None:
            verdict = inconclusive(verdict.prop, verdict.check, [clocks], verdict.figures)
        self.verdicts.append(verdict)
        with self.report.step(f"check {verdict.title}: {verdict.outcome.upper()}"):
            for name, value in verdict.figures.items():
                self.report.parameter(f"{verdict.prop}.{name}", value)
            if verdict.unchecked:
                self.report.parameter(f"{verdict.prop}.not checked", "; ".join(verdict.unchecked))
            self.report.attach(f"{verdict.prop} verdict", verdict.summary())
        return verdict.require()

    def report_evidence(self, title: str) -> None:
        """The history and the cluster's own records, for the report: the request log, the
        timeline and share plots, the fault timeline, node logs, the balancer's configuration,
        the load workers' clocks and the Toxiproxy state."""
        records, timeline = self.log.records, self.nemesis.timeline
        log_path = self.directory / "requests.jsonl"
        self.log.write(log_path)
        self.report.attach_file("request log (JSON lines)", log_path)
        if records:
            self.report.attach_file("timeline", report.timeline_png(
                records, timeline.events, self.directory / "timeline.png", title))
            self.report.attach_file("per-node share", report.shares_png(
                records, self.nodes, self.directory / "shares.png", "share of successful requests per node"))
        if timeline.events:
            timeline.write(self.directory / "faults.jsonl")
            self.report.attach("fault timeline", json.dumps(
                [json.loads(line) for line in (self.directory / "faults.jsonl").read_text().splitlines()],
                indent=1), "json")
        if self.observations.observations:
            self.report.attach("observations", json.dumps(
                [o.__dict__ for o in self.observations], indent=1, default=str), "json")
        for node in self.nodes:
            if text := self.cluster.node_log(node):
                self.report.attach(f"log {node}", text[-20000:])
        if self.cluster.lb_config():
            self.report.attach("haproxy.cfg", self.cluster.lb_config())
        self.traffic.report_clocks()
        if self.cluster.toxiproxy:
            try:
                state = json.dumps(self.cluster.toxiproxy.state(), indent=1)
            except Exception as e:  # noqa: BLE001 - evidence is best effort
                state = f"unavailable: {e}"
            self.report.attach("toxiproxy state", state, "json")
