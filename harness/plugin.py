"""The pytest entry: options, thresholds, fixtures and Allure wiring for `pytest scenarios/`.

`conftest.py` only names this plugin. A scenario asks for the `scenario` fixture and gets a
`harness.world.World` on a healed cluster: a fault injector, clients writing one request log,
the topology's evidence, and a `check` that files the verdict's figures in Allure and fails
unless it passed. This module is the adapter between that world and pytest: options,
fixtures, the skip a `NotApplicable` becomes, verdicts shown as verdicts, Allure. After each scenario the request log, the timeline plot, node logs and
the balancer and Toxiproxy configuration are attached. On an external cluster, `harness
probe` runs first: its warnings are printed, and any problem (known to be wrong) stops the
session.
"""

from __future__ import annotations

import os
import platform
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, ExitStack
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import allure
import pytest

from harness import kernel, report
from harness.cluster import Cluster
from harness.cluster.backends import start_cluster
from harness.components import run_versions
from harness.config import Safety, load_topology
from harness.errors import HarnessError, NotApplicable, VerdictFailure, WorkersMissing
from harness.injector import network_engine
from harness.kernel import KernelFaults
from harness.mutants import MUTANTS, get_mutant
from harness.properties import MARKERS, OTHER_MARKERS, Property, marker_line
from harness import safety
from harness.runstate import KEEP_VAR
from harness.safety import REMOTE_TARGETS_HELP, NotHealthy, StopConditions
from harness.soak.plan import SoakPlan, add_soak_options, option_values
from harness.thresholds import Thresholds
from harness.traffic import workers
from harness.traffic.plan import Distributed
from harness.verdict import Verdict
from harness.world import AttachmentKind, World

SOAK_PREFIX = "--soak-"
RECOVERY_BOUNDS = 3  # rejoin bounds a cluster found unhealthy between scenarios may take to recover
def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("harness", "conformance harness")
    group.addoption("--backend", default="auto", choices=("auto", "local", "docker", "external"),
                    help="where the cluster runs (default: auto = docker if an engine answers, else local)")
    group.addoption("--topology", default=None, metavar="FILE",
                    help="topology file of an external cluster (implies --backend external)")
    group.addoption("--nodes", type=int, default=3, metavar="N",
                    help="nodes of the reference cluster (default 3)")
    group.addoption("--mutant", default=None, metavar="NAME",
                    choices=[m.name for m in MUTANTS],
                    help="break the reference cluster with this mutant (see `harness mutants`)")
    group.addoption("--allow-remote-targets", action="store_true", help=REMOTE_TARGETS_HELP)
    group.addoption("--victim", default="busiest", metavar="NODE|busiest|all",
                    help="the node failover, network and rejoin faults hit: busiest (the node "
                         "that served most in the warm-up; default), a node id, or all (each "
                         "node in turn, one result per node)")
    group.addoption("--network-faults", default="auto", choices=("auto", "toxiproxy", "kernel"),
                    help="what injects network faults: Toxiproxy proxies, kernel rules "
                         "(iptables, tbf) scoped to the node's address and port, or auto "
                         "(Toxiproxy where the topology has it, else the kernel; default)")
    group.addoption("--keep-run-dir", action="store_true",
                    help="keep the reference cluster's run directory (logs, settings, "
                         "certificates) after the run, until the next run starts")
    group.addoption("--show-fault-commands", action="store_true",
                    help="print every kernel fault command (and its undo) as it runs")
    group.addoption("--plan", action="store_true",
                    help="list every fault the selected scenarios would inject, on which node, "
                         "by which command or rule, with its undo; run nothing (needs --topology)")
    group.addoption("--abort-file", default=None, metavar="FILE",
                    help="abort the run (every fault healed, the load stopped) when this file "
                         "appears; `harness abort` and SIGTERM do the same")
    safety.add_stop_options(group.addoption)
    group.addoption("--load-master", default=None, metavar="HOST[:PORT]",
                    help="where this machine's master listens for load workers (--load-workers): "
                         "an address they reach it at (default the topology's load.master, else "
                         "127.0.0.1:5557)")
    add_soak_options(group.addoption, SOAK_PREFIX, defaults={"minutes": 0.0}, helps={
        "minutes": "run the soak scenario (-m soak) for M minutes; 0 (default) skips it"})
    for option, kind, default, text in Thresholds.options():
        shown = "not set" if default is None else default
        group.addoption(option, type=kind, default=default, metavar="X",
                        help=f"{text} (default {shown})")


def pytest_configure(config: pytest.Config) -> None:
    for name in (*MARKERS, *OTHER_MARKERS):
        config.addinivalue_line("markers", marker_line(name))
    config.stash[_started] = time.time()
    if config.getoption("keep_run_dir"):
        os.environ[KEEP_VAR] = "1"
    if config.getoption("load_processes") < 1:
        raise pytest.UsageError("--load-processes must be at least 1")
    if config.getoption("plan") and config.getoption("topology") is None:
        raise pytest.UsageError("--plan lists the faults a run would inject on a topology's "
                                "cluster: give --topology FILE")
    if config.getoption("max_faulted_nodes") < 1:
        raise pytest.UsageError("--max-faulted-nodes must be at least 1: no fault could run")
    try:
        _stops(config, Safety())
    except HarnessError as e:
        raise pytest.UsageError(str(e)) from None
    try:
        workers.distributed(config.getoption("load_workers"), config.getoption("load_master"), None)
    except HarnessError as e:
        raise pytest.UsageError(str(e)) from None
    if config.getoption("nodes") < 2 and config.getoption("topology") is None:
        raise pytest.UsageError("--nodes must be at least 2 for a cluster to fail over")
    if config.getoption("soak_minutes"):
        try:
            config.stash[_soak_plan] = SoakPlan.from_options(
                option_values(config.option, SOAK_PREFIX), SOAK_PREFIX,
                keep_logs=config.option.keep_run_dir)
        except HarnessError as e:
            raise pytest.UsageError(str(e)) from None
    victim = config.getoption("victim")
    if victim not in ("busiest", "all") and victim not in _node_ids(config):
        raise pytest.UsageError(f"--victim {victim}: the cluster has no node {victim!r} "
                                f"(its nodes: {', '.join(_node_ids(config))})")


@pytest.hookimpl(trylast=True)  # after -m and -k have selected
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The soak runs when asked (`--soak-minutes`, or `-m soak`, which then says how); a plain
    `pytest scenarios/` leaves it out, as pytest users leave out slow tests. `--plan`: the
    faults of what was selected, listed, and nothing run."""
    if not (config.getoption("soak_minutes") or "soak" in (config.option.markexpr or "")):
        soaks = [item for item in items if item.get_closest_marker("soak")]
        if soaks:
            config.hook.pytest_deselected(items=soaks)
            items[:] = [item for item in items if not item.get_closest_marker("soak")]
    if config.getoption("plan"):
        _plan(config, items)


def _plan(config: pytest.Config, items: list[pytest.Item]) -> None:
    import tempfile

    from harness.dryrun import injections, listing

    topology = load_topology(config.getoption("topology"), allow_remote=config.getoption("allow_remote_targets"))
    planned = [(item.name, injections(getattr(item, "callspec", None) and item.callspec.params or {},
                                      [a for m in item.iter_markers("injects") for a in m.args]))
               for item in items if _properties(item)]
    with tempfile.TemporaryDirectory(prefix="harness-plan-") as scratch:
        text = listing(topology, planned, config.getoption("victim"),
                       config.getoption("network_faults"), Path(scratch) / "inspect.log")
    _terminal(config)(text)
    config.hook.pytest_deselected(items=list(items))
    items[:] = []


def _node_ids(config: pytest.Config) -> list[str]:
    """The cluster's node ids before it starts: the topology's, or the reference's node1..N."""
    path = config.getoption("topology")
    if path is None:
        return [f"node{i}" for i in range(1, config.getoption("nodes") + 1)]
    try:
        return load_topology(path, allow_remote=config.getoption("allow_remote_targets")).node_ids
    except HarnessError as e:
        raise pytest.UsageError(str(e)) from None


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]
                              ) -> Iterator[pytest.TestReport]:
    """A verdict that is not a pass is shown as the verdict (its sentence, figures, what was
    not checked, where the evidence is), not as a traceback into the harness: it is the
    cluster's failure, not a crash. Harness errors keep their traceback."""
    report = yield
    failure = call.excinfo.value if call.excinfo is not None else None
    if isinstance(failure, VerdictFailure) and isinstance(failure.verdict, Verdict):
        report.longrepr = VerdictRepr(failure.verdict, _evidence_note(item))
    return report


@dataclass(frozen=True)
class Crash:
    message: str


class VerdictRepr:
    """A failed scenario's report as its verdict: what pytest prints in the failures section
    (`toterminal`) and, as `reprcrash.message`, on the short summary line."""

    def __init__(self, verdict: Verdict, note: str) -> None:
        self.text = "\n".join(x for x in (verdict.describe(), note) if x)
        self.reprcrash = Crash(f"{verdict.title} {verdict.outcome}: {verdict.explanation}")

    def toterminal(self, tw: Any) -> None:
        for line in self.text.splitlines():
            tw.line(line, red=line.endswith(("VIOLATED", "INCONCLUSIVE")))

    def __str__(self) -> str:
        return self.text


def _evidence_note(item: pytest.Item) -> str:
    """Where this scenario's evidence is: the Allure results, and its own folder."""
    world = getattr(item, "funcargs", {}).get("scenario")
    lines = []
    results = getattr(item.config.option, "allure_report_dir", None)
    if results:
        lines.append(f"  report: Allure results in {results} (`harness report {results}` "
                     "renders them)")
    if isinstance(world, World):
        lines.append(f"  evidence: {world.directory} (requests.jsonl, timeline.png)")
    return "\n".join(lines)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """`--victim all`: a scenario that takes a `victim` runs once per node."""
    if "victim" in metafunc.fixturenames and metafunc.config.getoption("victim") == "all":
        metafunc.parametrize("victim", _node_ids(metafunc.config),
                             ids=lambda node: f"victim={node}")


@pytest.fixture
def victim(request: pytest.FixtureRequest) -> str:
    """`busiest` or the node id given with --victim; see `World.pick_victim`."""
    return request.config.getoption("victim")


_started = pytest.StashKey[float]()
_verdicts = pytest.StashKey[list[tuple[str, Verdict]]]()
_soak_plan = pytest.StashKey[SoakPlan]()


def _properties(item: pytest.Item) -> tuple[Property, ...]:
    """The properties a scenario proves, from its markers (narrowed by protocol for C2/C3)."""
    props = {p for m in item.iter_markers() for p in MARKERS.get(m.name, ())}
    protocols = {m.name for m in item.iter_markers()} & {"http", "https"}
    if props == {Property.C2, Property.C3} and len(protocols) == 1:
        props = {Property.C3} if protocols == {"https"} else {Property.C2}
    return tuple(p for p in Property if p in props)


def _claimed_skip(item: pytest.Item, cluster: Cluster) -> str | None:
    """Why the scenario cannot run on this cluster: a property it proves is not claimed, or
    it goes through an entry protocol the cluster has none of (C1 over HTTPS behind an
    HTTP-only balancer such as Varnish)."""
    props = _properties(item)
    if props and not any(cluster.topology.claims_property(p) for p in props):
        return f"the topology does not claim {'/'.join(props)}"
    for protocol in {m.name for m in item.iter_markers()} & {"http", "https"}:
        if getattr(cluster.topology.entry, protocol) is None:
            return f"the cluster's entry has no {protocol} endpoint (entry.{protocol})"
    return None


def _stops(config: pytest.Config, defaults: Safety) -> StopConditions:
    """The run's stop conditions: the options, else the topology's `safety` section."""
    return safety.stop_conditions({f.name: config.getoption(f.name) for f in fields(StopConditions)},
                                  defaults)


@pytest.fixture(scope="session")
def thresholds(request: pytest.FixtureRequest) -> Thresholds:
    return Thresholds(**{f.name: request.config.getoption(Thresholds.option(f.name))
                         for f in fields(Thresholds)})


class AllureReporter:
    """A world's steps, figures and evidence as Allure's steps, parameters and attachments."""

    KINDS = {"text": allure.attachment_type.TEXT, "json": allure.attachment_type.JSON}
    BY_SUFFIX = {".png": allure.attachment_type.PNG, ".json": allure.attachment_type.JSON,
                 ".jsonl": allure.attachment_type.JSON, ".csv": allure.attachment_type.CSV,
                 ".txt": allure.attachment_type.TEXT}

    def step(self, title: str) -> AbstractContextManager[object]:
        return allure.step(title)

    def parameter(self, name: str, value: object) -> None:
        allure.dynamic.parameter(name, value)

    def attach(self, name: str, text: str, kind: AttachmentKind = "text") -> None:
        allure.attach(text, name=name, attachment_type=self.KINDS[kind])

    def attach_file(self, name: str, path: Path) -> None:
        allure.attach.file(str(path), name=name, attachment_type=self.BY_SUFFIX.get(path.suffix),
                           extension=path.name.split(".", 1)[-1])


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    """What a world cannot do with this cluster (`NotApplicable`) is a skip, with its
    sentence naming what would enable it; load workers that did not come stop the run."""
    try:
        return (yield)
    except (NotApplicable, NotHealthy) as e:  # NotHealthy: "not run", the cluster left as it was
        pytest.skip(str(e))
    except WorkersMissing as e:  # the same for every scenario after this one: stop here
        pytest.exit(f"harness: {e}", returncode=2)


@pytest.fixture(scope="session")
def cluster_factory(request: pytest.FixtureRequest) -> Iterator[Callable[..., Cluster]]:
    """Starts clusters with the session's options; all of them stop at the session's end."""
    opts = request.config.option
    started: list[Cluster] = []

    def start(nodes: int | None = None) -> Cluster:
        if not started:
            kernel.sweep()  # rules and qdiscs a killed run left
            abort_file = opts.abort_file and Path(opts.abort_file)
            safety.install(f"pytest scenarios/ ({opts.topology or opts.backend})", abort_file or None)
        if opts.topology and not started:
            _probe_first(opts.topology, opts.allow_remote_targets, _terminal(request.config))
        with allure.step(f"cluster up ({opts.backend}, {nodes or opts.nodes} nodes)"):
            try:
                cluster = start_cluster(opts.backend, nodes or opts.nodes, opts.mutant,
                                        opts.topology, opts.allow_remote_targets)
            except HarnessError as e:
                pytest.exit(f"harness: {e}", returncode=2)
        started.append(cluster)
        _say_warnings(cluster, _terminal(request.config))
        return cluster

    yield start
    for cluster in started:
        cluster.close()
    _write_environment(request.config, started)


def _probe_first(topology: str, allow_remote: bool, say: Callable[[str], None]) -> None:
    """`harness probe` before any scenario on an external cluster: its warnings (guesses) are
    said and the run goes on; its problems (known to be wrong) stop it, with their sentences."""
    from harness.probe import probe

    try:
        result = probe(load_topology(topology, allow_remote=allow_remote))
        problems = result.problems
        for warning in result.warnings:
            say(f"harness probe: warning: {warning}")
    except HarnessError as e:
        problems = [str(e)]
    if problems:
        pytest.exit("harness probe: " + "\nharness probe: ".join(problems), returncode=2)


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
        **run_versions(),
    })


def _label_by_property(item: pytest.Item) -> None:
    """Group scenarios in Allure by the property they prove, as the README's table does:
    the overview's suites then read like the contract ("C2/C3 HTTP fails over; HTTPS fails over")."""
    groups = [marker_line(m.name).split(": ", 1)[1] for m in item.iter_markers() if m.name in MARKERS]
    if groups:
        allure.dynamic.parent_suite(groups[0])
        allure.dynamic.feature(groups[0])
    allure.dynamic.suite(item.module.__name__.rsplit(".", 1)[-1] if item.module else item.name)


@pytest.fixture(scope="session")
def load_workers(request: pytest.FixtureRequest, thresholds: Thresholds) -> Iterator[Distributed | None]:
    """The master the session's loads wait for workers at (`--load-workers`), the topology's
    load machines started over SSH for the session; None: local load processes."""
    opts = request.config.option
    topology = load_topology(opts.topology, allow_remote=opts.allow_remote_targets) \
        if opts.topology else None
    with ExitStack() as stack:
        try:
            spec = stack.enter_context(workers.for_run(thresholds.load_workers, opts.load_master, topology))
        except HarnessError as e:
            pytest.exit(f"harness: {e}", returncode=2)
        yield spec


def _scenario(request: pytest.FixtureRequest, cluster: Cluster, thresholds: Thresholds,
              tmp_path: Path) -> Iterator[World]:
    _label_by_property(request.node)
    reason = _claimed_skip(request.node, cluster)
    if reason:
        pytest.skip(reason)
    world = World(cluster, thresholds, tmp_path, _properties(request.node),
                  network_engine(cluster, request.config.getoption("network_faults"),
                                 _kernel_engine(request.config)), AllureReporter(),
                  request.getfixturevalue("load_workers"), _stops(request.config, cluster.topology.safety))
    with allure.step("cluster healed and reset"):
        cluster.reset()
        if wrong := world.health.await_healthy(thresholds.rejoin_bound * RECOVERY_BOUNDS):
            # nothing is in force between scenarios: this one is not run, and none after it
            why = safety.stopped(f"the cluster did not recover within {thresholds.rejoin_bound * RECOVERY_BOUNDS:g} s "
                                 f"before {request.node.name}: {'; '.join(wrong)}")
            request.session.shouldstop = f"ABORTED: {why}"
            pytest.skip(f"not run: ABORTED: {why}")
        for warning in _say_warnings(cluster, _terminal(request.config)):
            allure.attach(warning, "warning", allure.attachment_type.TEXT)
    try:
        yield world
    finally:
        world.report_evidence(request.node.name)
        request.config.stash.setdefault(_verdicts, []).extend(
            (request.node.name, v) for v in world.verdicts)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """A run a stop condition ended is interrupted, whatever its scenarios did before."""
    if safety.abort_reason() and exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.INTERRUPTED


def pytest_keyboard_interrupt(excinfo: pytest.ExceptionInfo[BaseException]) -> None:
    """An aborted run says so, and why (the faults in force were healed on the way out)."""
    if isinstance(excinfo.value, safety.Aborted):
        print(f"\nharness: ABORTED: {excinfo.value.why}; every fault in force was healed, the "
              "load stopped")


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    """Every verdict, a line each, passes included with what they did not check: on the
    terminal what Allure shows, for who reads the run there (`-qq` leaves it out)."""
    verdicts = config.stash.get(_verdicts, [])
    if not verdicts or config.get_verbosity() < -1:
        return
    terminalreporter.section("verdicts")
    for scenario, verdict in verdicts:
        line = f"{verdict.outcome.upper():<12} {verdict.summary()}  [{scenario}]"
        terminalreporter.write_line(line, green=verdict.passed, red=verdict.outcome == "violated",
                                    yellow=verdict.outcome == "inconclusive")


def _say_warnings(cluster: Cluster, say: Callable[[str], None]) -> list[str]:
    """The cluster's warnings not said yet, said (a guess is said, and the run goes on)."""
    new = list(cluster.warnings)
    cluster.warnings.clear()
    for warning in new:
        say(f"harness: warning: {warning}")
    return new


def _kernel_engine(config: pytest.Config) -> KernelFaults:
    """The process's kernel engine, printing its commands to the terminal if asked."""
    engine = KernelFaults.shared()
    if config.getoption("show_fault_commands") and engine.show is None:
        say = _terminal(config)
        engine.show = lambda line: say(f"fault command: {line}")
    return engine


@pytest.fixture(scope="session")
def soak_plan(request: pytest.FixtureRequest) -> SoakPlan | None:
    """The soak to run (`--soak-minutes`), or None: the soak scenario then skips."""
    return request.config.stash.get(_soak_plan, None)


@pytest.fixture
def progress(request: pytest.FixtureRequest) -> Callable[[str], None]:
    """Lines on the terminal while a long scenario runs."""
    return _terminal(request.config)


def _terminal(config: pytest.Config) -> Callable[[str], None]:
    """Writes a line to the terminal past pytest's capture, on a line of its own (never
    inside `-q`'s row of progress dots)."""
    capture = config.pluginmanager.getplugin("capturemanager")
    reporter = config.pluginmanager.getplugin("terminalreporter")

    def say(line: str) -> None:
        with capture.global_and_fixture_disabled():
            if reporter is None:
                print(line)
            else:
                reporter.ensure_newline()
                reporter.write_line(line)

    return say


@pytest.fixture
def scenario(request: pytest.FixtureRequest, cluster: Cluster, thresholds: Thresholds,
             tmp_path: Path) -> Iterator[World]:
    """A scenario on the session's cluster, healed and reset first."""
    yield from _scenario(request, cluster, thresholds, tmp_path)


@pytest.fixture
def own_cluster_scenario(request: pytest.FixtureRequest, cluster_factory: Callable[..., Cluster],
                         thresholds: Thresholds, tmp_path: Path) -> Iterator[World]:
    """A scenario on a cluster of its own, for scenarios that change the membership (C13);
    on an external cluster, the cluster itself (a node is added to it and removed again)."""
    if request.config.getoption("topology"):
        session_cluster: Cluster = request.getfixturevalue("cluster")
        scale = session_cluster.topology.evidence.scale
        if not _claimed_skip(request.node, session_cluster) and (scale is None or scale.add is None):
            pytest.skip(f"{'/'.join(_properties(request.node))} needs `evidence.scale.add` and "
                        "`evidence.scale.remove` in the topology")
        yield from _scenario(request, session_cluster, thresholds, tmp_path)
        return
    cluster = cluster_factory(nodes=2)
    try:
        yield from _scenario(request, cluster, thresholds, tmp_path)
    finally:
        cluster.close()
