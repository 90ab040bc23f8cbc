"""One run's world: a cluster, its history, the fault injector, clients, evidence and victims.

Jepsen's test map, without pytest: the scenarios (through the `scenario` fixture of
`harness.plugin`), the soak and the CLI all act through a `World`. It starts traffic (clients
and Locust loads writing the request log), injects faults (`harness.fault.Fault` values,
recorded on the fault timeline), reads what client traffic cannot show (the topology's
evidence, recorded as observations), chooses victims from what the traffic saw, and judges
with the run's thresholds (`harness.judge.Judge`).

What it cannot do with this cluster is `NotApplicable` (the pytest adapter makes it a skip
naming the topology field that would enable it); a cluster that answers, but not as the
topology says, is a `ConfigurationError`; a verdict that is not a pass raises (`check`).
What a reader of a report should see goes to its `Reporter`: steps, parameters and
attachments (Allure's, in the pytest adapter; nothing, by default).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from functools import cached_property
from pathlib import Path
from typing import Any, Literal, Protocol

from harness import checks, report, victims
from harness.cluster import Cluster
from harness.config import BalancingUnit
from harness.config import Protocol as WireProtocol
from harness.errors import ConfigurationError, HarnessError, NotApplicable
from harness.evidence import Call, Evidence, SideEffects, Source, State, Toggle, interpret
from harness.fault import PEER_FAULTS, Fault
from harness.faults import FaultInjector, NetworkEngine, network_engine
from harness.history.faults import FaultEvent, FaultKind
from harness.history.observations import ObservationLog
from harness.history.requests import RequestLog, RequestRecord
from harness.judge import Judge
from harness.thresholds import Thresholds
from harness.traffic.clients import FtpClient, HttpClient, SmtpClient
from harness.traffic.load import Load
from harness.safety import NotHealthy
from harness.traffic.plan import Distributed
from harness.verdict import Missing, Verdict, inconclusive

UNIT_PROBE_REQUESTS = 12
SESSION_PROBES = 6
EVIDENCE_POLL_S = 0.25  # how often a load that runs until its evidence is in looks
RECOVERY_POLL_S = 0.1
WARM_UP_S = 1.0  # load before a fault, for the victim to be chosen by its traffic
TRAFFIC_MARGIN_S = 0.5  # load after a fault's window, so that requests after it are seen
VICTIM_WAIT_S = 5.0  # the longest a victim is waited for to serve after the warm-up
VICTIM_POLL_S = 0.1
FAULT_LOAD_CAP_S = 120.0  # the longest a fault's load may run (a fault whose commands hang)
HEALTH_TIMEOUT_S = 2.0  # a node's own answer before a fault, before it counts as none
RECENT_S = 2.0  # the entry's answers looked at before a fault
ENTRY_UNHEALTHY = 0.2  # the share of them failing that makes a cluster unhealthy

AttachmentKind = Literal["text", "json"]


class Reporter(Protocol):
    """Where a world's steps, figures and evidence go for a reader (Allure's, in pytest)."""

    def step(self, title: str) -> AbstractContextManager[object]: ...

    def parameter(self, name: str, value: object) -> None: ...

    def attach(self, name: str, text: str, kind: AttachmentKind = "text") -> None: ...

    def attach_file(self, name: str, path: Path) -> None:
        """A file, its type told by its name's suffix."""


class Unreported:
    """A reporter that keeps nothing (the CLI's soak writes its own report files)."""

    def step(self, title: str) -> AbstractContextManager[object]:
        return nullcontext()

    def parameter(self, name: str, value: object) -> None:
        pass

    def attach(self, name: str, text: str, kind: AttachmentKind = "text") -> None:
        pass

    def attach_file(self, name: str, path: Path) -> None:
        pass


class World:
    def __init__(self, cluster: Cluster, thresholds: Thresholds, directory: Path,
                 props: tuple[str, ...] = (), network: NetworkEngine | None = None,
                 reporter: Reporter | None = None, workers: Distributed | None = None) -> None:
        """`props`: the properties this world's scenario proves, for messages; `network`:
        what injects network faults (`--network-faults`; default auto); `workers`: load
        workers on other machines make its loads (`--load-workers`), else local processes."""
        self.cluster, self.thresholds, self.directory = cluster, thresholds, directory
        self.workers = workers
        self.loads: list[Load] = []
        self.running_load: Load | None = None
        self.props = props
        self.faults = FaultInjector(cluster)
        self.network = network or network_engine(cluster, "auto")
        self.report: Reporter = reporter or Unreported()
        self.judge = Judge(thresholds)
        self.log = RequestLog()
        self.observations = ObservationLog()
        self.verdicts: list[Verdict] = []

    @property
    def nodes(self) -> list[str]:
        return self.cluster.node_ids

    @property
    def who(self) -> str:
        return "/".join(self.props) or "this scenario"

    # -- traffic ---------------------------------------------------------------------------

    def http(self) -> HttpClient:
        return HttpClient(self.cluster.topology, self.log, verify=self.cluster.ca_file)

    def ftp(self) -> FtpClient:
        return FtpClient(self.cluster.topology, self.log)

    def smtp(self) -> SmtpClient:
        return SmtpClient(self.cluster.topology, self.log)

    @contextmanager
    def steady_load(self, seconds: float, protocol: WireProtocol = "http", **plan: Any) -> Iterator[Load]:
        """Traffic through the entry point (by default) for up to `seconds`, in Locust
        processes (`--load-processes`); its records join the request log at the end."""
        t = self.thresholds
        plan = {"users": t.load_users, "rate": t.load_rate, **plan}
        if isinstance(plan.get("call"), Call):
            plan["call"] = plan["call"].model_dump()
        with self.report.step(f"steady {protocol} load: {plan['users']} users x {plan['rate']}/s "
                              f"for up to {seconds:.0f} s"):
            load = self.new_load(protocol=protocol, duration_s=seconds, **plan)
            with load:
                self.running_load = load
                try:
                    yield load
                finally:
                    self.running_load = None
            self.log.extend(load.records)

    def new_load(self, **plan: Any) -> Load:
        """A load of this world's cluster, made where `--load-processes` and `--load-workers`
        say (`harness.traffic.load.Load` takes the plan); its workers' clocks are kept."""
        load = Load(self.cluster.topology, self.directory, verify=self.cluster.ca_file,
                    processes=self.thresholds.load_processes, workers=self.workers, **plan)
        self.loads.append(load)
        return load

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

    @contextmanager
    def load_through_fault(self, protocol: WireProtocol = "http", **plan: Any) -> Iterator[Load]:
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
        self.load_until(load, lambda rs: self.judge.rejoin_judgeable(rs, node, back_at, self.nodes))

    def load_until_served(self, load: Load, answers: int) -> None:
        """Until the nodes have served `answers` successful requests between them, however
        slowly the machine lets the load run (a busy CI host made three quarters of the rate)."""
        self.load_until(load, lambda rs: sum(checks.served(rs, self.nodes).values()) >= answers)

    def seconds_for(self, requests: int) -> float:
        """How long the steady load needs to make `requests` at the planned rate (a quarter
        more, for ramp-up and jitter): the plan, and with `load_until_served`, a cap's unit."""
        t = self.thresholds
        return requests / (t.load_users * t.load_rate) * 1.25 + 1

    def expect_set_up(self, record: RequestRecord, fix: str) -> RequestRecord:
        """A request made before any fault must succeed: if it does not, the harness cannot
        talk to this cluster as configured, which is a configuration error, not a verdict."""
        if not record.ok:
            raise ConfigurationError(
                f"before any fault, {record.protocol.upper()} {record.operation} on "
                f"{record.endpoint} failed ({record.error}); check {fix}")
        return record

    # -- victims and the balancer's unit -----------------------------------------------------

    def pick_victim(self, load: Load, choice: str) -> str:
        """The node to fault: `choice` if it names one, else the node that served most
        through the entry during the load's warm-up (a victim without traffic proves nothing).
        Either way it is waited for (at most VICTIM_WAIT_S) until it serves as much as the
        failover check needs before its fault: a balancer may hold nodes out of rotation for
        its fail timeout after an earlier fault, and a loaded machine makes a second's warm-up
        thin. The report says what was waited for; the check judges what the history shows."""
        named = choice != "busiest"
        if named:
            self.cluster.topology.node(choice)
        need, start = self.thresholds.min_victim_requests, time.monotonic()
        while True:
            records = load.records_so_far()
            picked = (choice, "chosen with --victim") if named else victims.busiest(records, self.nodes)
            enough = picked is not None and \
                checks.served_lately(records, picked[0], time.monotonic()) >= need
            waited = time.monotonic() - start
            if enough or waited > VICTIM_WAIT_S or not load.running():
                break
            time.sleep(VICTIM_POLL_S)
        if picked is None:
            entry = [r for r in records if r.endpoint == "entry"]
            error = next((f" (first error: {r.error})" for r in entry if r.error), "")
            raise HarnessError(f"none of {len(entry)} requests through the entry succeeded in the "
                               f"warm-up and {waited:.1f} s after it{error}, so no victim can be chosen")
        victim, why = picked
        if not enough:
            why += f"; it served fewer than {need} requests in the last " \
                   f"{checks.VICTIM_LOOKBACK_S:g} s even {waited:.1f} s after the warm-up"
        elif waited > VICTIM_POLL_S:
            why += f"; it served too little for {waited:.1f} s after the warm-up, then enough"
        self.report.parameter("victim", victim)
        self.report.attach("victim", f"victim {victim} ({why})")
        return victim

    def session_victim(self, protocol: WireProtocol, open_entry_session: Callable[[], RequestRecord],
                       fix: str) -> str:
        """The node to fail for a session protocol (FTP, SMTP): with a cluster entry for it,
        the node the entry sends this client's sessions to, found out by opening a few;
        without one, the first node."""
        if self.cluster.topology.entry.get(protocol) is None:
            return self.nodes[0]
        sessions = [self.expect_set_up(open_entry_session(), fix) for _ in range(SESSION_PROBES)]
        victim, found = victims.session_affinity(sessions)
        with self.report.step(f"{protocol} sessions through the entry: {found}; victim {victim}"):
            self.report.parameter(f"entry sessions ({protocol})", found)
            self.report.parameter("victim", victim)
        return victim

    def balancing_unit(self, protocol: WireProtocol) -> BalancingUnit:
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
            unit, why = victims.balancing_unit(probe.records, protocol)
        with self.report.step(f"balancing unit over {protocol}: {unit} ({why})"):
            self.report.parameter(f"balancing unit ({protocol})", unit)
        return unit

    # -- faults -----------------------------------------------------------------------------

    def require_fault(self, kind: FaultKind | str, link: str | None = None) -> None:
        """`NotApplicable`, saying why (the topology field that would enable it, or what the
        kernel lacks), if this cluster cannot inject `kind` (and heal it)."""
        kind = FaultKind(kind)
        if link is None:
            field = self.cluster.missing_for_fault(kind)
            if field:
                raise NotApplicable(f"{self.who} {kind} needs `{field}` in the topology")
            return
        engine = self.network.engine_for(kind)
        why = engine.missing(kind, link)
        if why:
            what = f"of a node from {link}" if kind in PEER_FAULTS else f"of a node's {link} link"
            raise NotApplicable(f"{self.who} {kind} {what} by {engine.name}: {why}")

    @contextmanager
    def fault(self, kind: FaultKind | str, node: str, link: str | None = None) -> Iterator[FaultEvent]:
        """`kind` on `node` (its `link`, for a network fault), as hard as the vocabulary says,
        in force while the body runs (it holds `fault_seconds`: `hold`)."""
        self.require_fault(kind, link)  # a cluster that cannot inject it skips, naming the field
        self.steady(node)  # a cluster that is not healthy is not faulted further
        fault = Fault.of(kind, node, link)
        with self.report.step(f"fault injected: {fault}"):
            with self.faults.inject(fault, self.network) as event:
                for line in event.detail.get("applied", []):
                    self.report.attach(f"{event.detail['engine']} fault applied", line)
                yield event
        assert event.end_mono is not None
        self.report.attach("fault healed", f"{fault} healed after "
                                           f"{event.end_mono - event.start_mono:.2f} s")

    def unhealthy(self) -> list[str]:
        """What is wrong with the cluster now, a sentence each (none: healthy): a node not
        under a fault of this run that does not answer on its own endpoint, the entry failing
        a fifth of its answers in the last seconds of load, the topology's health check
        (`safety.health`) failing. How the entry spreads its load is C1's, not health's."""
        topology = self.cluster.topology
        wrong = [f"{node} {why}" for node, why in self.down_nodes(self.faults.in_force()).items()]
        if self.running_load is not None:
            since = time.monotonic() - RECENT_S
            recent = [r for r in self.running_load.records_so_far()
                      if r.endpoint == "entry" and r.end_mono >= since]
            failed = [r for r in recent if not r.ok]
            if recent and len(failed) > max(2, ENTRY_UNHEALTHY * len(recent)):
                wrong.append(f"the entry failed {len(failed)} of its {len(recent)} answers in the last "
                             f"{RECENT_S:g} s (first: {failed[0].error or failed[0].status})")
        if (failed := self.health_check_fails()) is not None:
            wrong.append(f"its health check failed: {failed}")
        return wrong

    def down_nodes(self, besides: set[str]) -> dict[str, str]:
        """The nodes (but `besides`) that do not answer on their own endpoint, and how."""
        topology, down = self.cluster.topology, {}
        for node in topology.nodes:
            protocol = "http" if node.endpoints.http else "https" if node.endpoints.https else None
            if node.id in besides or protocol is None:
                continue
            record = HttpClient(topology, RequestLog(), verify=self.cluster.ca_file,
                                timeout_s=HEALTH_TIMEOUT_S).request(endpoint=node.id, protocol=protocol)
            if not record.ok:
                down[node.id] = f"did not answer on its own endpoint ({record.error or record.status})"
        return down

    def health_check_fails(self) -> str | None:
        """How the topology's own health check (`safety.health`) failed, or None."""
        health = self.cluster.topology.safety.health
        if health is None:
            return None
        try:
            self.evidence.fetch(health, "safety.health", self.nodes[0])
        except HarnessError as e:
            return str(e)
        return None

    def await_healthy(self, bound_s: float) -> list[str]:
        """Wait for the cluster to be healthy, at most `bound_s`; what was still wrong then."""
        deadline = time.monotonic() + bound_s
        while (wrong := self.unhealthy()) and time.monotonic() < deadline:
            time.sleep(RECOVERY_POLL_S * 5)
        return wrong

    def steady(self, node: str) -> None:
        """`NotHealthy` unless a fault on `node` may be injected now: the cluster healthy
        (`unhealthy`), and no more nodes out at once than the blast radius allows
        (`--max-faulted-nodes`), counting those under this run's other faults."""
        wrong = self.unhealthy()
        if wrong:
            raise NotHealthy(f"not run: the cluster was not healthy before the fault on {node}: "
                             + "; ".join(wrong))
        out = self.faults.in_force() | {node}
        limit = self.thresholds.max_faulted_nodes
        if len(out) > limit:
            raise NotHealthy(f"not run: a fault on {node} would have {len(out)} nodes out at once "
                             f"({', '.join(sorted(out))}), more than --max-faulted-nodes {limit}")

    def require_store_cut(self, state: State) -> None:
        """`NotApplicable` unless a node can be cut off the shared store: by the network
        engine on the store link, or by the operator's commands."""
        if state.store_cut is not None:
            return
        link = self.store_link(state)
        if link is None:
            raise NotApplicable(f"{self.who} store cut needs `evidence.state.store_link` (a "
                                "Toxiproxy link), `evidence.state.store_address` (kernel faults) "
                                "or `evidence.state.store_cut` (commands) in the topology")
        self.require_fault(FaultKind.CUT, link=link)

    def store_link(self, state: State) -> str | None:
        """The link to fault for a node's connection to the store: Toxiproxy's proxy link
        (`store_link`), or for the kernel engine the link the cluster maps to the store."""
        if self.network.name == "toxiproxy":
            return state.store_link
        return state.store_link or "store"

    @contextmanager
    def store_cut(self, node: str, state: State) -> Iterator[FaultEvent]:
        """Cut `node` off the shared store: by the network engine on its store link, or else
        by the operator's commands (`state.store_cut`)."""
        link = self.store_link(state)
        if link is not None and (state.store_cut is None or not self.network.missing(FaultKind.CUT, link)):
            with self.fault(FaultKind.CUT, node, link=link) as event:
                yield event
            return
        assert state.store_cut is not None
        cut = state.store_cut
        with self.report.step(f"fault injected: {node} cut off the store (evidence.state.store_cut)"):
            with self.faults.by_commands(
                    Fault.of(FaultKind.CUT, node, "store"),
                    lambda: self.evidence.act(cut.make, "state.store_cut.make", node),
                    lambda: self.evidence.act(cut.undo, "state.store_cut.undo", node)) as event:
                yield event

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

    def settle_membership(self) -> None:
        """Give peers time to see a node's changed state before relying on it."""
        time.sleep(self.thresholds.membership_settle)

    # -- evidence ---------------------------------------------------------------------------

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

    def require_evidence(self, field: str) -> Any:
        """The topology's `evidence.<field>` (dotted), or `NotApplicable` naming the field."""
        spec: Any = self.cluster.topology.evidence
        for part in field.split("."):
            spec = getattr(spec, part) if spec is not None else None
        if spec is None:
            raise NotApplicable(f"{self.who} needs `evidence.{field}` in the topology")
        return spec

    def observe(self, source: Source, field: str, what: str, nodes: list[str] | None = None,
                missing_ok: bool = False, **values: str) -> dict[str, object]:
        """Read `source` (`evidence.<field>`) about each node, one round of readings recorded
        as observations of `what`; a reading that fails is recorded with its error. Returns
        the values read."""
        sample = self.observations.new_sample()
        read: dict[str, object] = {}
        for node in nodes or self.nodes:
            try:
                read[node] = self.evidence.fetch(source, field, node, missing_ok=missing_ok, **values)
            except HarnessError as e:
                self.observations.add(what, node, None, sample, error=str(e))
                continue
            self.observations.add(what, node, read[node], sample)
        return read

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

    @contextmanager
    def toggled(self, toggle: Toggle, field: str, nodes: list[str]) -> Iterator[None]:
        """Put `nodes` in the state `toggle` makes (e.g. unable to serve) for the body; always
        take them back out, so that a cluster of the user's is left as it was found."""
        made: list[str] = []
        with self.report.step(f"evidence.{field}.make on {', '.join(nodes)}"):
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
            try:
                counts = {node: self.evidence.fetch(pools.connections, "pools.connections", node)
                          for node in self.nodes}
            except HarnessError:
                return  # the back end cannot be read now (full?): the scenario's own readings show it
            # fewer than the pool's size: not refilled yet (more is a leak, the check's to judge)
            short = {n: c for n, c in counts.items() if not isinstance(c, int) or c < pools.pool_size}
            if not short:
                return
            if time.monotonic() > deadline:
                node, count = next(iter(short.items()))
                raise HarnessError(
                    f"{node} did not recover before this scenario: the back end counts {count} "
                    f"of its {pools.pool_size} pool connections {self.thresholds.rejoin_bound:g} s "
                    "after the reset (evidence.pools.connections)")
            time.sleep(RECOVERY_POLL_S)

    # -- verdicts and the report ------------------------------------------------------------

    def failover_verdict(self, fault: FaultEvent, prop: str) -> Verdict:
        return self.judge.failover(self.log.records, fault, prop)

    def unchecked(self) -> list[str]:
        """What this world's traffic could not show, from what it drove."""
        notes = []
        if self.cluster.ca_file is False and any(r.protocol == "https" for r in self.log):
            notes.append("certificates not verified (tls.insecure)")
        return notes

    def check(self, verdict: Verdict) -> Verdict:
        """Report a verdict's figures; raise unless it passed: a contract violation, or
        inconclusive (not enough evidence), each its own category. A verdict that compared
        request times with the fault timeline is not given when load workers' clocks were
        known less well than it resolves."""
        verdict = verdict.noting(*self.unchecked())
        clocks = self.clock_problem() if self.faults.timeline.events else None
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
        timeline and share plots, the fault timeline, node logs, the balancer's configuration
        and the Toxiproxy state."""
        records, events = self.log.records, self.faults.timeline.events
        log_path = self.directory / "requests.jsonl"
        self.log.write(log_path)
        self.report.attach_file("request log (JSON lines)", log_path)
        if records:
            png = report.timeline_png(records, events, self.directory / "timeline.png", title)
            self.report.attach_file("timeline", png)
            shares = report.shares_png(records, self.nodes, self.directory / "shares.png",
                                       "share of successful requests per node")
            self.report.attach_file("per-node share", shares)
        if events:
            timeline = self.directory / "faults.jsonl"
            self.faults.timeline.write(timeline)
            self.report.attach("fault timeline", json.dumps(
                [json.loads(line) for line in timeline.read_text().splitlines()], indent=1), "json")
        if self.observations.observations:
            self.report.attach("observations", json.dumps(
                [o.__dict__ for o in self.observations], indent=1, default=str), "json")
        for node in self.nodes:
            text = self.cluster.node_log(node)
            if text:
                self.report.attach(f"log {node}", text[-20000:])
        if self.cluster.lb_config():
            self.report.attach("haproxy.cfg", self.cluster.lb_config())
        clocks = [c for load in self.loads for c in load.clocks]
        if clocks:
            worst = max(c.error_s or 0.0 for c in clocks)
            self.report.parameter("load worker clocks: error bound (ms)", round(worst * 1000, 3))
            self.report.attach("load worker clocks", "\n".join(
                f"{c.worker}: offset {c.start.offset_s:+.6f} s, bound {c.start.bound_s * 1000:.3f} ms"
                f" at the start; drift {'not measured' if c.drift_s is None else f'{c.drift_s * 1000:.3f} ms'}"
                f" by the end; error at most {'unknown' if c.error_s is None else f'{c.error_s * 1000:.3f} ms'}"
                for c in clocks))
        if self.cluster.toxiproxy:
            try:
                state = json.dumps(self.cluster.toxiproxy.state(), indent=1)
            except Exception as e:  # noqa: BLE001 - evidence is best effort
                state = f"unavailable: {e}"
            self.report.attach("toxiproxy state", state, "json")
