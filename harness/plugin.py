"""The pytest entry: options, thresholds, fixtures and Allure wiring for `pytest scenarios/`.

`conftest.py` only names this plugin. A scenario asks for the `scenario` fixture and gets a
healed cluster, a fault injector, clients writing one request log, and a `check` that files
the verdict's figures in Allure and raises `ContractViolation` when the contract is broken.
After each scenario the request log, the timeline plot, node logs and the balancer and
Toxiproxy configuration are attached.
"""

from __future__ import annotations

import json
import platform
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import allure
import pytest

from harness import report
from harness.checks import Verdict
from harness.cluster import Cluster, start_cluster
from harness.cluster.base import WHOAMI
from harness.config import Protocol
from harness.errors import HarnessError
from harness.faults import FaultEvent, FaultInjector
from harness.mutants import MUTANTS, get_mutant
from harness.traffic.clients import FtpClient, HttpClient, SmtpClient
from harness.traffic.load import Load
from harness.traffic.log import RequestLog, RequestRecord

ROOT = Path(__file__).resolve().parent.parent

# pytest marker -> the properties it covers (a scenario is skipped if none is claimed)
MARKER_PROPERTIES: dict[str, tuple[str, ...]] = {
    "lb": ("C1",), "failover": ("C2", "C3"), "network": ("C4",), "rejoin": ("C5",),
    "no_redirect": ("C6", "C7"), "redirect": ("C8",), "admin": ("C9",), "state": ("C10",),
    "packages": ("C11",), "pool": ("C12",), "scale": ("C13",), "exactly_once": ("C14",),
}


@dataclass(frozen=True)
class Thresholds:
    """Every bound a check applies; each is a command-line option (see the README)."""

    error_budget: float = 0.01
    max_failover_gap: float = 3.0
    balance_tolerance: float = 0.25
    balance_alpha: float = 0.001
    rejoin_bound: float = 5.0
    replication_bound: float = 2.0
    min_scale_ratio: float = 1.2
    fault_seconds: float = 2.0
    membership_settle: float = 0.75
    load_rate: float = 20.0
    load_users: int = 4

    @staticmethod
    def option(name: str) -> str:
        return "--" + name.replace("_", "-")


THRESHOLD_HELP = {
    "error_budget": "share of requests that may fail during a fault window",
    "max_failover_gap": "longest time in seconds with no successful answer during failover",
    "balance_tolerance": "largest relative deviation of a node's share from its fair share",
    "balance_alpha": "significance of the chi-square test of the load split",
    "rejoin_bound": "seconds a restarted node may take to serve through the entry again",
    "replication_bound": "seconds a replicated package may take to reach every node",
    "min_scale_ratio": "saturated throughput with N+1 nodes over N nodes must reach this",
    "fault_seconds": "how long each injected fault lasts",
    "membership_settle": "seconds for peers to see a node's changed state (package, quiesce)",
    "load_rate": "requests per second per simulated user during steady load",
    "load_users": "simulated users during steady load",
}


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("harness", "conformance harness")
    group.addoption("--backend", default="auto", choices=("auto", "local", "docker", "external"),
                    help="where the cluster runs (default: auto = docker if an engine answers, else local)")
    group.addoption("--topology", default=None, metavar="PATH",
                    help="topology file of an external cluster (implies --backend external)")
    group.addoption("--nodes", type=int, default=3, metavar="N",
                    help="nodes of the reference cluster (default 3)")
    group.addoption("--mutant", default=None, metavar="NAME",
                    choices=[m.name for m in MUTANTS],
                    help="break the reference cluster with this mutant (see `harness mutants`)")
    group.addoption("--allow-remote-targets", action="store_true",
                    help="allow a topology to name addresses outside loopback")
    for f in fields(Thresholds):
        group.addoption(Thresholds.option(f.name), type=type(f.default), default=f.default,
                        metavar="X", help=f"{THRESHOLD_HELP[f.name]} (default {f.default})")


def pytest_configure(config: pytest.Config) -> None:
    config.stash[_started] = time.time()
    if config.getoption("nodes") < 2 and config.getoption("topology") is None:
        raise pytest.UsageError("--nodes must be at least 2 for a cluster to fail over")


_started = pytest.StashKey[float]()


def _claimed_skip(item: pytest.Item, cluster: Cluster) -> str | None:
    props = {p for m in item.iter_markers() for p in MARKER_PROPERTIES.get(m.name, ())}
    if props and not any(cluster.topology.claims_property(p) for p in props):
        return f"the topology does not claim {'/'.join(sorted(props))}"
    return None


@pytest.fixture(scope="session")
def thresholds(request: pytest.FixtureRequest) -> Thresholds:
    return Thresholds(**{f.name: request.config.getoption(Thresholds.option(f.name))
                         for f in fields(Thresholds)})


@pytest.fixture(scope="session")
def cluster_factory(request: pytest.FixtureRequest) -> Iterator[Callable[..., Cluster]]:
    """Starts clusters with the session's options; all of them stop at the session's end."""
    opts = request.config.option
    started: list[Cluster] = []

    def start(nodes: int | None = None) -> Cluster:
        with allure.step(f"cluster up ({opts.backend}, {nodes or opts.nodes} nodes)"):
            try:
                cluster = start_cluster(opts.backend, nodes or opts.nodes, opts.mutant,
                                        opts.topology, opts.allow_remote_targets)
            except HarnessError as e:
                pytest.exit(f"harness: {e}", returncode=2)
        started.append(cluster)
        return cluster

    yield start
    for cluster in started:
        cluster.close()
    _write_environment(request.config, started)


@pytest.fixture(scope="session")
def cluster(cluster_factory: Callable[..., Cluster]) -> Cluster:
    return cluster_factory()


def _write_environment(config: pytest.Config, clusters: list[Cluster]) -> None:
    results = getattr(config.option, "allure_report_dir", None)
    if not results:
        return
    mutant = get_mutant(config.option.mutant)
    report.write_environment(Path(results), {
        "backend": clusters[0].backend if clusters else config.option.backend,
        "nodes": config.option.nodes,
        "mutant": mutant.name if mutant else "none (sound cluster)",
        "python": platform.python_version(),
        **{name: _version(cmd) for name, cmd in COMPONENT_VERSIONS.items()},
    })


COMPONENT_VERSIONS = {
    "haproxy": ["haproxy", "-v"], "redis": ["redis-server", "--version"],
    "toxiproxy": ["toxiproxy-server", "--version"], "docker": ["docker", "--version"],
}


def _version(cmd: list[str]) -> str:
    if shutil.which(cmd[0]) is None:
        return "missing"
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=10)
    return (done.stdout or done.stderr).strip().splitlines()[0][:80] if done.returncode == 0 else "error"


class Scenario:
    """One scenario's world: the cluster, its faults, its traffic and its verdicts."""

    def __init__(self, cluster: Cluster, thresholds: Thresholds, directory: Path) -> None:
        self.cluster, self.thresholds, self.directory = cluster, thresholds, directory
        self.faults = FaultInjector(cluster)
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

    def admin(self, node: str, service: str, **params: str) -> RequestRecord:
        """Call an administrative service on one node; a failure is a harness error."""
        record = self.http().call(f"wm.art.admin:{service}", endpoint=node, params=params)
        if not record.ok:
            raise HarnessError(f"administrative call {service} on {node} failed: {record.error}")
        return record

    @contextmanager
    def steady_load(self, seconds: float, protocol: Protocol = "http", **plan: Any) -> Iterator[Load]:
        """Traffic through the entry point (by default) for `seconds`, in a Locust process."""
        t = self.thresholds
        plan = {"users": t.load_users, "rate": t.load_rate, **plan}
        with allure.step(f"steady {protocol} load: {plan['users']} users x {plan['rate']}/s "
                         f"for {seconds:.0f} s"):
            load = Load(self.cluster.topology, self.directory, verify=self.cluster.ca_file,
                        protocol=protocol, duration_s=seconds, **plan)
            with load:
                yield load
            self.log.extend(load.records)

    @contextmanager
    def fault(self, kind: str, node: str, **options: Any) -> Iterator[FaultEvent]:
        """Inject a fault for `fault_seconds` (the body runs while it is in force)."""
        injectors = {"kill": self.faults.kill, "pause": self.faults.pause,
                     "cut": self.faults.link_down}
        inject = injectors.get(kind) or (lambda n, **o: self.faults.toxic(n, kind, **o))
        with allure.step(f"fault injected: {kind} {node} {options or ''}".strip()):
            with inject(node, **options) as event:
                yield event
        allure.attach(f"{kind} of {node} healed after {event.end_mono - event.start_mono:.2f} s",
                      name="fault healed", attachment_type=allure.attachment_type.TEXT)

    def settle_membership(self) -> None:
        """Give peers time to see a node's changed state before relying on it."""
        time.sleep(self.thresholds.membership_settle)

    def hold(self, seconds: float | None = None) -> None:
        time.sleep(self.thresholds.fault_seconds if seconds is None else seconds)

    def check(self, verdict: Verdict) -> Verdict:
        """Report a verdict's figures and fail the scenario if the contract is broken."""
        self.verdicts.append(verdict)
        with allure.step(f"check {verdict.prop} {verdict.check}: "
                         f"{'passed' if verdict.passed else 'FAILED'}"):
            for name, value in verdict.figures.items():
                allure.dynamic.parameter(f"{verdict.prop}.{name}", value)
            allure.attach(verdict.explanation, name=f"{verdict.prop} verdict",
                          attachment_type=allure.attachment_type.TEXT)
        return verdict.require()

    def whoami(self, endpoint: str) -> str | None:
        return self.http().call(WHOAMI.removeprefix("/invoke/"), endpoint=endpoint).node

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


def _label_by_property(item: pytest.Item, config: pytest.Config) -> None:
    """Group scenarios in Allure by the property they prove, as the README's table does:
    the overview's suites then read like the contract ("C2/C3 HTTP and HTTPS fail over")."""
    described = dict(line.split(": ", 1) for line in config.getini("markers") if ": " in line)
    groups = [described[m.name] for m in item.iter_markers() if m.name in MARKER_PROPERTIES]
    if groups:
        allure.dynamic.parent_suite(groups[0])
        allure.dynamic.feature(groups[0])
    allure.dynamic.suite(item.module.__name__.rsplit(".", 1)[-1] if item.module else item.name)


def _scenario(request: pytest.FixtureRequest, cluster: Cluster, thresholds: Thresholds,
              tmp_path: Path) -> Iterator[Scenario]:
    _label_by_property(request.node, request.config)
    reason = _claimed_skip(request.node, cluster)
    if reason:
        pytest.skip(reason)
    with allure.step("cluster healed and reset"):
        cluster.reset()
    world = Scenario(cluster, thresholds, tmp_path)
    try:
        yield world
    finally:
        world.attach_evidence(request.node.name)


@pytest.fixture
def scenario(request: pytest.FixtureRequest, cluster: Cluster, thresholds: Thresholds,
             tmp_path: Path) -> Iterator[Scenario]:
    """A scenario on the session's cluster, healed and reset first."""
    yield from _scenario(request, cluster, thresholds, tmp_path)


@pytest.fixture
def own_cluster_scenario(request: pytest.FixtureRequest, cluster_factory: Callable[..., Cluster],
                         thresholds: Thresholds, tmp_path: Path) -> Iterator[Scenario]:
    """A scenario on a cluster of its own, for scenarios that change the membership (C13)."""
    cluster = cluster_factory(nodes=2)
    try:
        yield from _scenario(request, cluster, thresholds, tmp_path)
    finally:
        cluster.close()
