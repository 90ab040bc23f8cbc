"""One scenario's world: the cluster, its faults, its traffic, its evidence and its verdicts.

The `scenario` fixture (harness.plugin) hands a `Scenario` to every scenario in
`scenarios/`, which read like the contract: steady load, a fault on the victim, a check.
`Scenario` turns what a cluster cannot do into skips naming the topology field that would
let it (`require_fault`, `require_evidence`), what the harness cannot do with the cluster into
configuration errors (`expect_set_up`), and every verdict into Allure figures and, unless it
passed, a `ContractViolation` or an `Inconclusive` (`check`).
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import allure
import pytest

from harness import checks, report
from harness.checks import BalancingUnit
from harness.cluster import Cluster
from harness.config import Protocol
from harness.errors import ConfigurationError, HarnessError
from harness.evidence import Call, Evidence, SideEffects, Source, State, Toggle, interpret
from harness.faults import FaultEvent, FaultInjector, NetworkEngine, network_engine
from harness.traffic.clients import FtpClient, HttpClient, SmtpClient
from harness.traffic.load import Load
from harness.traffic.log import RequestLog, RequestRecord
from harness.verdict import Verdict

UNIT_PROBE_REQUESTS = 12
SESSION_PROBES = 6
REJOIN_POLL_S = 0.25
RECOVERY_POLL_S = 0.1
WARM_UP_S = 1.0  # load before a fault, for the victim to be chosen by its traffic
TRAFFIC_MARGIN_S = 0.5  # load after a fault's window, so that requests after it are seen
FAULT_LOAD_CAP_S = 120.0  # the longest a fault's load may run (a fault whose commands hang)


@dataclass(frozen=True)
class Thresholds:
    """Every bound a check applies; each is a command-line option (see the README)."""

    error_budget: float = 0.01
    max_failover_gap: float = 3.0
    max_failover_wait: float = 1.5
    max_failover_latency: float | None = None
    min_victim_requests: int = 3
    min_window_requests: int = 20
    balance_tolerance: float = 0.25
    balance_alpha: float = 0.001
    rejoin_bound: float = 5.0
    rejoin_tolerance: float = 0.35
    rejoin_load_cap: float = 60.0
    replication_bound: float = 2.0
    min_scale_ratio: float = 1.2
    fault_seconds: float = 2.0
    membership_settle: float = 0.75
    load_rate: float = 20.0
    load_users: int = 4
    load_processes: int = 1

    @staticmethod
    def option(name: str) -> str:
        return "--" + name.replace("_", "-")


THRESHOLD_HELP = {
    "error_budget": "share of requests that may fail during a fault window",
    "max_failover_gap": "longest time in seconds with no successful answer during failover",
    "max_failover_wait": "longest a request in flight during a fault may wait for the faulted "
                         "node to come back and answer it (a request a peer served is never "
                         "judged by its latency)",
    "max_failover_latency": "if set, the slowest answer (and p99) in seconds allowed while a "
                            "node fails, whoever served it",
    "min_victim_requests": "requests the victim must serve in the second before its fault, "
                           "else the verdict is inconclusive",
    "min_window_requests": "requests that must overlap a fault window, else inconclusive",
    "balance_tolerance": "largest relative deviation of a node's share from its fair share",
    "balance_alpha": "significance of the chi-square test of the load split",
    "rejoin_bound": "seconds a restarted node may take to serve through the entry again",
    "rejoin_tolerance": "largest relative deviation of a rejoined node's share from its fair "
                        "share, counted from the moment it is stably back",
    "rejoin_load_cap": "longest the rejoin scenario's load runs, waiting for the node to be "
                       "back for the rejoin bound with enough answers to judge its share",
    "replication_bound": "seconds a replicated package may take to reach every node",
    "min_scale_ratio": "saturated throughput with N+1 nodes over N nodes must reach this",
    "fault_seconds": "how long each injected fault lasts",
    "membership_settle": "seconds for peers to see a node's changed state (package, quiesce)",
    "load_rate": "requests per second per simulated user during steady load",
    "load_users": "simulated users during steady load",
    "load_processes": "Locust processes the steady load's users are shared over (one per core "
                      "uses them all)",
}


class Scenario:
    """One scenario's world: the cluster, its faults, its traffic and its verdicts."""

    def __init__(self, cluster: Cluster, thresholds: Thresholds, directory: Path,
                 props: tuple[str, ...] = (), network: NetworkEngine | None = None) -> None:
        """`props`: the properties the scenario proves (from its markers), for messages;
        `network`: what injects network faults (`--network-faults`; default auto)."""
        self.cluster, self.thresholds, self.directory = cluster, thresholds, directory
        self.props = props
        self.faults = FaultInjector(cluster)
        self.network = network or network_engine(cluster, "auto")
        self.log = RequestLog()
        self.verdicts: list[Verdict] = []

    @property
    def nodes(self) -> list[str]:
        return self.cluster.node_ids

    def http(self) -> HttpClient:
        return HttpClient(self.cluster.topology, self.log, verify=self.cluster.ca_file)

    def ftp(self) -> FtpClient:
        return FtpClient(self.cluster.topology, self.log)

    def smtp(self) -> SmtpClient:
        return SmtpClient(self.cluster.topology, self.log)

    @contextmanager
    def steady_load(self, seconds: float, protocol: Protocol = "http", **plan: Any) -> Iterator[Load]:
        """Traffic through the entry point (by default) for `seconds`, in Locust processes
        (`--load-processes`)."""
        t = self.thresholds
        plan = {"users": t.load_users, "rate": t.load_rate, **plan}
        if isinstance(plan.get("call"), Call):
            plan["call"] = plan["call"].model_dump()
        with allure.step(f"steady {protocol} load: {plan['users']} users x {plan['rate']}/s "
                         f"for up to {seconds:.0f} s"):
            load = Load(self.cluster.topology, self.directory, verify=self.cluster.ca_file,
                        processes=t.load_processes, protocol=protocol, duration_s=seconds, **plan)
            with load:
                yield load
            self.log.extend(load.records)

    @contextmanager
    def load_through_fault(self, protocol: Protocol = "http", **plan: Any) -> Iterator[Load]:
        """Steady load around the fault the body injects: a second's warm-up first, then,
        after the body, on until the fault's window is over (its end plus the settling the
        failover check judges), however long the fault's own actions took: a kill and
        restart through an operator's slow commands must not outlast the traffic."""
        with self.steady_load(seconds=FAULT_LOAD_CAP_S, protocol=protocol, **plan) as load:
            self.hold(WARM_UP_S)
            yield load
            events = self.faults.timeline.events
            until = (events[-1].end_mono or time.monotonic()) if events else time.monotonic()
            time.sleep(max(0.0, until + checks.FAILOVER_SETTLE_S + TRAFFIC_MARGIN_S - time.monotonic()))
            load.end_now()

    def expect_set_up(self, record: RequestRecord, fix: str) -> RequestRecord:
        """A request made before any fault must succeed: if it does not, the harness cannot
        talk to this cluster as configured, which is a configuration error, not a verdict."""
        if not record.ok:
            raise ConfigurationError(
                f"before any fault, {record.protocol.upper()} {record.operation} on "
                f"{record.endpoint} failed ({record.error}); check {fix}")
        return record

    def session_victim(self, protocol: Protocol, open_entry_session: Callable[[], RequestRecord],
                       fix: str) -> str:
        """The node to fail for a session protocol (FTP, SMTP): with a cluster entry for it,
        the node the entry sends this client's sessions to (a balancer by source address
        sends them all to one), found out by opening a few; without one, the first node."""
        if self.cluster.topology.entry.get(protocol) is None:
            return self.nodes[0]
        served = Counter(self.expect_set_up(open_entry_session(), fix).node
                         for _ in range(SESSION_PROBES))
        victim, count = served.most_common(1)[0]
        found = (f"{count} of {SESSION_PROBES} sessions on {victim}: affinity" if count == SESSION_PROBES
                 else "spread: " + ", ".join(f"{n} {c}" for n, c in served.most_common()))
        with allure.step(f"{protocol} sessions through the entry: {found}; victim {victim}"):
            allure.dynamic.parameter(f"entry sessions ({protocol})", found)
            allure.dynamic.parameter("victim", victim)
        return victim

    @cached_property
    def evidence(self) -> Evidence:
        """The topology's evidence sources, read with its authentication and templates."""
        topology = self.cluster.topology

        def request(call: Call, target: str, values: dict[str, str]) -> tuple[bool, object, str]:
            record = HttpClient(topology, RequestLog(), verify=self.cluster.ca_file).send(
                call, target, values, keep_text=True)
            return record.ok, record.error or record.status, str(record.detail.get("text", ""))

        return Evidence(topology.evidence, request,
                        lambda node: topology.node(node).placeholders(), self.directory,
                        cwd=topology.directory)

    def await_recovery(self) -> None:
        """Wait, after the cluster's reset, for what this scenario reads to have recovered from
        the scenarios before it: for C12, every node's pool full again at the back end (a node
        a scenario restarted refills it as it starts). A node that does not recover within
        the rejoin bound is one sentence naming it and what it reported, rather than a
        verdict on a half-healed cluster."""
        pools = self.cluster.topology.evidence.pools
        if "C12" not in self.props or pools is None:
            return
        deadline = time.monotonic() + self.thresholds.rejoin_bound
        while True:
            counts = {node: self.evidence.fetch(pools.connections, "pools.connections", node)
                      for node in self.nodes}
            short = {n: c for n, c in counts.items() if c != pools.pool_size}
            if not short:
                return
            if time.monotonic() > deadline:
                node, count = next(iter(short.items()))
                raise HarnessError(
                    f"{node} did not recover before this scenario: the back end counts {count} "
                    f"of its {pools.pool_size} pool connections {self.thresholds.rejoin_bound:g} s "
                    "after the reset (evidence.pools.connections)")
            time.sleep(RECOVERY_POLL_S)

    def require_store_cut(self, state: State) -> None:
        """Skip unless a node can be cut off the shared store: by the network engine on the
        store link, or by the operator's commands."""
        if state.store_cut is not None:
            return
        link = self.store_link(state)
        if link is None:
            pytest.skip(f"{'/'.join(self.props)} store cut needs `evidence.state.store_link` (a "
                        "Toxiproxy link), `evidence.state.store_address` (kernel faults) or "
                        "`evidence.state.store_cut` (commands) in the topology")
        self.require_fault("cut", link=link)

    def store_link(self, state: State) -> str | None:
        """The link to fault for a node's connection to the store: Toxiproxy's proxy link
        (`store_link`), or for the kernel engine the link the cluster maps to the store."""
        if self.network.name == "toxiproxy":
            return state.store_link
        return state.store_link or "store"

    @contextmanager
    def store_cut(self, node: str, state: State) -> Iterator[FaultEvent]:
        """Cut `node` off the shared store for `fault_seconds`: by the network engine on its
        store link, or else by the operator's commands (`state.store_cut`)."""
        link = self.store_link(state)
        if link is not None and (state.store_cut is None or not self.network.missing("cut", link)):
            with self.fault("cut", node, link=link) as event:
                yield event
            return
        assert state.store_cut is not None
        cut = state.store_cut
        with allure.step(f"fault injected: {node} cut off the store (evidence.state.store_cut)"):
            with self.faults.by_commands(
                    node, "store",
                    lambda: self.evidence.act(cut.make, "state.store_cut.make", node),
                    lambda: self.evidence.act(cut.undo, "state.store_cut.undo", node)) as event:
                yield event

    @contextmanager
    def toggled(self, toggle: Toggle, field: str, nodes: list[str]) -> Iterator[None]:
        """Put `nodes` in the state `toggle` makes (e.g. unable to serve) for the body; always
        take them back out, so that a cluster of the user's is left as it was found."""
        made: list[str] = []
        with allure.step(f"evidence.{field}.make on {', '.join(nodes)}"):
            try:
                for node in nodes:
                    self.evidence.act(toggle.make, f"{field}.make", node)
                    made.append(node)
                yield
            finally:
                for node in made:
                    self.evidence.act(toggle.undo, f"{field}.undo", node)

    def undo_calls(self, calls: list[Call], field: str, node: str) -> None:
        """Take back what a scenario changed on `node` (`evidence.<field>`), so that later
        scenarios find the cluster as this one did; a call that fails says so."""
        http = HttpClient(self.cluster.topology, RequestLog(), verify=self.cluster.ca_file)
        for call in calls:
            record = http.send(call, node)
            if not record.ok:
                raise ConfigurationError(f"evidence.{field}: {call.method} {call.path} on {node} "
                                         f"failed ({record.error or record.status})")

    def read_answer(self, source: Source, record: RequestRecord, field: str) -> Any:
        """What `source` reads from the answer of a request `record` (sent with keep_text);
        None when the request failed."""
        if not record.ok:
            return None
        return interpret(source, str(record.detail.get("text", "")), f"evidence.{field}")

    def recorded_side_effects(self, spec: SideEffects) -> list[dict[str, object]]:
        """The side effects the cluster recorded, each `{kind, key}`; a plain key (a line of
        a mail spool) stands for a side effect of any kind."""
        recorded = self.evidence.fetch(spec.recorded, "side_effects.recorded")
        if not isinstance(recorded, list):
            raise ConfigurationError("evidence.side_effects.recorded answered "
                                     f"{type(recorded).__name__}, not a list of side effects")
        return [e if isinstance(e, dict) else {"key": str(e)} for e in recorded]

    def require_evidence(self, field: str) -> Any:
        """The topology's `evidence.<field>` (dotted), or a skip naming the field."""
        spec: Any = self.cluster.topology.evidence
        for part in field.split("."):
            spec = getattr(spec, part) if spec is not None else None
        if spec is None:
            pytest.skip(f"{'/'.join(self.props) or 'this scenario'} needs `evidence.{field}` "
                        "in the topology")
        return spec

    def require_fault(self, kind: str, link: str | None = None) -> None:
        """Skip, saying why (the topology field that would enable it, or what the kernel
        lacks), if this cluster cannot inject `kind` (and heal it)."""
        who = '/'.join(self.props) or 'this scenario'
        if link is None:
            field = self.cluster.missing_for_fault(kind)
            if field:
                pytest.skip(f"{who} {kind} needs `{field}` in the topology")
            return
        why = self.network.missing(kind, link)
        if why:
            pytest.skip(f"{who} {kind} of a node's {link} link by {self.network.name}: {why}")

    def seconds_for(self, requests: int) -> float:
        """How long the steady load must run to make `requests` (a quarter more, for ramp-up
        and jitter)."""
        t = self.thresholds
        return requests / (t.load_users * t.load_rate) * 1.25 + 1

    def pick_victim(self, load: Load, choice: str) -> str:
        """The node to fault: `choice` if it names one, else the node that served most
        through the entry during the load's warm-up (a victim without traffic proves nothing)."""
        if choice != "busiest":
            self.cluster.topology.node(choice)
            victim, why = choice, "chosen with --victim"
        else:
            served = Counter(r.node for r in load.records_so_far()
                             if r.ok and r.endpoint == "entry" and r.node in self.nodes)
            if not served:
                raise HarnessError("no request succeeded through the entry during the warm-up, "
                                   "so no victim can be chosen")
            victim, count = served.most_common(1)[0]
            why = f"busiest in the warm-up: {count} of {sum(served.values())} requests"
        allure.dynamic.parameter("victim", victim)
        allure.attach(f"victim {victim} ({why})", name="victim",
                      attachment_type=allure.attachment_type.TEXT)
        return victim

    def balancing_unit(self, protocol: Protocol) -> BalancingUnit:
        """What the entry balances: as the topology says, else found out by asking whether
        one keep-alive connection sees several nodes (an L7 balancer) or one (an L4 one)."""
        declared = self.cluster.topology.balancing
        if declared != "auto":
            unit, why = declared, "declared in the topology (balancing)"
        else:
            probe = RequestLog()
            client = HttpClient(self.cluster.topology, probe, verify=self.cluster.ca_file)
            for _ in range(UNIT_PROBE_REQUESTS):
                client.request(protocol=protocol)
            seen = {r.node for r in probe if r.ok and r.node}
            if not seen:
                failed = next((r.error for r in probe if not r.ok), "no node identity")
                raise ConfigurationError(f"the {protocol} entry did not answer with a node "
                                         f"identity ({failed})")
            unit = "request" if len(seen) > 1 else "connection"
            why = (f"found: one keep-alive connection saw {len(seen)} node(s) in "
                   f"{UNIT_PROBE_REQUESTS} requests")
        with allure.step(f"balancing unit over {protocol}: {unit} ({why})"):
            allure.dynamic.parameter(f"balancing unit ({protocol})", unit)
        return unit

    def failover_verdict(self, fault: FaultEvent, prop: str) -> Verdict:
        """`checks.failover` with this run's thresholds."""
        t = self.thresholds
        return checks.failover(self.log.records, fault, error_budget=t.error_budget,
                               max_gap_s=t.max_failover_gap, max_wait_s=t.max_failover_wait,
                               max_latency_s=t.max_failover_latency,
                               min_victim_requests=t.min_victim_requests,
                               min_window_requests=t.min_window_requests, prop=prop)

    def rejoin_verdict(self, records: list[RequestRecord], node: str, back_at: float,
                       unit: BalancingUnit) -> Verdict:
        """`checks.rejoined` with this run's thresholds."""
        t = self.thresholds
        return checks.rejoined(records, node, back_at, t.rejoin_bound, self.nodes,
                               tolerance=t.rejoin_tolerance, alpha=t.balance_alpha, unit=unit)

    def load_until_rejoin_judgeable(self, load: Load, node: str, back_at: float) -> None:
        """Keep `load` running until the rejoin check has its evidence (the node back for the
        bound with enough answers since, or the bound missed), then end it; the load's own
        length (`--rejoin-load-cap`) caps the wait."""
        t = self.thresholds
        while load.running():
            if checks.rejoin_judgeable(load.records_so_far(), node, back_at, t.rejoin_bound,
                                       self.nodes, tolerance=t.rejoin_tolerance,
                                       alpha=t.balance_alpha):
                load.end_now()
                return
            time.sleep(REJOIN_POLL_S)

    @contextmanager
    def fault(self, kind: str, node: str, **options: Any) -> Iterator[FaultEvent]:
        """Inject a fault for `fault_seconds` (the body runs while it is in force)."""
        injectors = {"kill": self.faults.kill, "pause": self.faults.pause,
                     "restart": self.faults.restart}
        inject = injectors.get(kind) or (lambda n, **o: self.faults.network(self.network, kind, n, **o))
        with allure.step(f"fault injected: {kind} {node} {options or ''}".strip()):
            with inject(node, **options) as event:
                for line in event.detail.get("applied", []):
                    allure.attach(line, name=f"{self.network.name} fault applied",
                                  attachment_type=allure.attachment_type.TEXT)
                yield event
        allure.attach(f"{kind} of {node} healed after {event.end_mono - event.start_mono:.2f} s",
                      name="fault healed", attachment_type=allure.attachment_type.TEXT)

    def settle_membership(self) -> None:
        """Give peers time to see a node's changed state before relying on it."""
        time.sleep(self.thresholds.membership_settle)

    def spread_over_fault(self, rounds: int) -> Iterator[int]:
        """`rounds` moments spread over `fault_seconds` (the body of each runs, then the
        pause to the next), so that what the cluster does later in a fault is seen too."""
        step = self.thresholds.fault_seconds / rounds
        start = time.monotonic()
        for i in range(rounds):
            yield i
            time.sleep(max(0.0, start + (i + 1) * step - time.monotonic()))

    def hold(self, seconds: float | None = None) -> None:
        time.sleep(self.thresholds.fault_seconds if seconds is None else seconds)

    def unchecked(self) -> list[str]:
        """What this scenario's traffic could not show, from what it drove."""
        notes = []
        if self.cluster.ca_file is False and any(r.protocol == "https" for r in self.log):
            notes.append("certificates not verified (tls.insecure)")
        return notes

    def check(self, verdict: Verdict) -> Verdict:
        """Report a verdict's figures; fail the scenario unless it passed: as a contract
        violation, or as inconclusive (not enough evidence), each its own Allure category."""
        verdict = verdict.noting(*self.unchecked())
        self.verdicts.append(verdict)
        with allure.step(f"check {verdict.title}: {verdict.outcome.upper()}"):
            for name, value in verdict.figures.items():
                allure.dynamic.parameter(f"{verdict.prop}.{name}", value)
            if verdict.unchecked:
                allure.dynamic.parameter(f"{verdict.prop}.not checked", "; ".join(verdict.unchecked))
            allure.attach(verdict.summary(), name=f"{verdict.prop} verdict",
                          attachment_type=allure.attachment_type.TEXT)
        return verdict.require()

    def attach_evidence(self, title: str) -> None:
        records, events = self.log.records, self.faults.timeline.events
        log_path = self.directory / "requests.jsonl"
        self.log.write(log_path)
        allure.attach.file(str(log_path), name="request log (JSON lines)",
                           attachment_type=allure.attachment_type.JSON, extension="jsonl")
        if records:
            png = report.timeline_png(records, events, self.directory / "timeline.png", title)
            allure.attach.file(str(png), name="timeline", attachment_type=allure.attachment_type.PNG)
            shares = report.shares_png(records, self.nodes, self.directory / "shares.png",
                                       "share of successful requests per node")
            allure.attach.file(str(shares), name="per-node share",
                               attachment_type=allure.attachment_type.PNG)
        if events:
            allure.attach(json.dumps([e.__dict__ for e in events], indent=1),
                          name="fault timeline", attachment_type=allure.attachment_type.JSON)
        for node in self.nodes:
            text = self.cluster.node_log(node)
            if text:
                allure.attach(text[-20000:], name=f"log {node}",
                              attachment_type=allure.attachment_type.TEXT)
        if self.cluster.lb_config():
            allure.attach(self.cluster.lb_config(), name="haproxy.cfg",
                          attachment_type=allure.attachment_type.TEXT)
        if self.cluster.toxiproxy:
            try:
                state = json.dumps(self.cluster.toxiproxy.state(), indent=1)
            except Exception as e:  # noqa: BLE001 - evidence is best effort
                state = f"unavailable: {e}"
            allure.attach(state, name="toxiproxy state", attachment_type=allure.attachment_type.JSON)
