"""`harness`: start and stop a reference cluster, list mutants, check the machine, build reports.

    harness up [--nodes N] [--backend B] [--mutant M]   start; print endpoints; stay up
               [--topology-out FILE]                    ...and write it as an external topology
    harness node ACTION [NODE] --socket SOCK            control a node of a running `harness up`
    harness down                                        stop what `up` started, sweep leftovers
    harness mutants                                     one a line: name, property, summary
    harness doctor                                      the real components and their versions
    harness report [RESULTS] [-o HTML]                  Allure HTML from results, with history
    harness scalability [--topology FILE | --nodes N]    saturated throughput N -> N+1 nodes
    harness probe --topology FILE                       check a topology against the live cluster
               [--list-fault-commands]                  ...and list what kernel faults would run
    harness soak --minutes M [--seed S] [--nemesis ...]  load and a seeded fault schedule for M
               [--keep-going] [--dry-run] [...]         minutes, judged window by window
    harness worker --master HOST[:PORT]                 a load worker, on a load machine

Bad input ends in one sentence on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import signal
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from harness import safety
from harness.cluster.backends import BACKENDS, resolve_backend, start_cluster
from harness.errors import HarnessError
from harness.mutants import MUTANTS
from harness.safety import REMOTE_TARGETS_HELP
from harness.runstate import KEEP_VAR, STATE_ROOT, write_whole
from harness.soak.plan import add_soak_options
from harness.version import VERSION

if TYPE_CHECKING:  # imported where used: `harness abort`, the kill switch, imports little
    from harness.kernel import Place

DEFAULT_ENDPOINTS = Path("reports/endpoints.json")
UP_PID = STATE_ROOT / "up.pid"


def cmd_up(args: argparse.Namespace) -> int:
    from harness.cluster.reference import ReferenceCluster
    from harness.control import ControlServer, write_topology

    cluster = start_cluster(args.backend, args.nodes, args.mutant)
    server = None
    stop = False

    def on_signal(signum: int, _frame: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        endpoints = {**cluster.endpoints(),
                     "topology": json.loads(cluster.topology.model_dump_json())}
        write_whole(args.endpoints_file, json.dumps(endpoints, indent=2))
        UP_PID.parent.mkdir(parents=True, exist_ok=True)
        UP_PID.write_text(str(os.getpid()))
        if args.topology_out:
            assert isinstance(cluster, ReferenceCluster)
            server = ControlServer(cluster, cluster.directory / "control.sock")
            write_topology(cluster, server.path, args.topology_out)
            endpoints["topology_file"] = str(args.topology_out.resolve())
        summary = {k: v for k, v in endpoints.items() if k != "topology"}
        print(json.dumps(summary, indent=2), flush=True)
        print(f"harness: cluster up; endpoints in {args.endpoints_file}; "
              "`harness down` or Ctrl-C stops it", file=sys.stderr, flush=True)
        while not stop:
            time.sleep(0.2)
    finally:
        if server is not None:
            server.close()
        cluster.close()
        UP_PID.unlink(missing_ok=True)
        args.endpoints_file.unlink(missing_ok=True)
        print("harness: cluster down", file=sys.stderr)
    return 0


def cmd_node(args: argparse.Namespace) -> int:
    from harness.control import NODE_ACTIONS, request

    if args.action in NODE_ACTIONS and not args.node:
        raise HarnessError(f"`harness node {args.action}` needs a node id")
    result = request(args.socket, args.action, args.node)
    if result:
        print(result)
    return 0


def cmd_down(args: argparse.Namespace) -> int:
    if UP_PID.exists():
        pid = int(UP_PID.read_text())
        try:
            os.kill(pid, signal.SIGTERM)
            for _ in range(150):
                os.kill(pid, 0)
                time.sleep(0.1)
        except ProcessLookupError:
            pass
        UP_PID.unlink(missing_ok=True)
    from harness.cluster.procs import sweep_stale
    from harness.kernel import sweep as sweep_kernel_faults
    from harness.traffic.workers import sweep as sweep_load_workers

    swept = sweep_stale() + sweep_kernel_faults(places=_node_hosts(args)) + sweep_load_workers()
    from harness.cluster.docker import sweep_stale_containers

    swept += sweep_stale_containers()
    print(f"harness: down{f' (swept {swept} leftovers)' if swept else ''}")
    return 0


def _node_hosts(args: argparse.Namespace) -> list[Place]:
    """The places kernel faults on the topology's nodes run, where they are not this host's
    (`--topology` given to `harness down`): hosts over SSH, the operator's templates."""
    if args.topology is None:
        return []
    from harness.config import load_topology
    from harness.kernel import Place, over_ssh

    places = []
    for node in load_topology(args.topology, allow_remote=args.allow_remote_targets).nodes:
        control = node.control
        if control.ssh:
            places.append(over_ssh(control.ssh, node.host, node.id))
        elif control.network:
            places.append(Place(f"{node.id}'s host", template=control.network,
                                values=tuple(node.placeholders().items())))
    return list(dict.fromkeys(places))


def cmd_mutants(args: argparse.Namespace) -> int:
    for m in MUTANTS:
        print(f"{m.name} {m.prop}  {m.summary}")
    return 0


DOCKER_ORIGIN = Path("/var/lib/harness/docker-origin")  # written by scripts/setup.sh


def os_release(path: Path = Path("/etc/os-release")) -> str:
    """The OS's PRETTY_NAME, as /etc/os-release gives it."""
    try:
        fields = dict(line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)
    except OSError:
        return "unknown (no /etc/os-release)"
    return fields.get("PRETTY_NAME", "unknown").strip('"')


def cmd_doctor(args: argparse.Namespace) -> int:
    from harness.components import COMPONENTS, answer

    print(f"   {'Python':<17} {platform.python_version()} ({sys.executable})")
    print(f"   {'OS':<17} {os_release()}")
    origin = DOCKER_ORIGIN.read_text().strip() if DOCKER_ORIGIN.exists() else \
        "not recorded (scripts/setup.sh has not run here)"
    print(f"   {'Docker origin':<17} {origin}")
    print(f"   {'Kernel faults':<17} {kernel_fault_kinds()}")
    missing = 0
    for c in COMPONENTS:
        ok, text = answer(c)
        mark = "ok " if ok else ("-- " if not c.required else "!! ")
        missing += (not ok) and c.required
        print(f"{mark}{c.name:<17} {text}  ({c.why})")
    return 1 if missing else 0


def kernel_fault_kinds() -> str:
    """Which kernel network faults this host can inject (`--network-faults kernel`)."""
    from harness.kernel import kernel_supports, privileged

    kinds = ", ".join(f"{k} {'yes' if kernel_supports(k) else 'no'}" for k in ("iptables", "tbf", "netem"))
    return kinds + ("" if privileged() else " (not root and no CAP_NET_ADMIN: none can be used)")


def cmd_report(args: argparse.Namespace) -> int:
    from harness.report import write_html

    index = write_html(args.results, args.output)
    print(f"harness: Allure report at {index.resolve()} (one file: open it in a browser; "
          f"`allure open {args.output / 'site'}` serves the same report)")
    return 0


def cmd_probe(args: argparse.Namespace) -> int:
    """A table of what every endpoint answered; one sentence per warning (a guess: the run
    would go on) and per problem (known to be wrong); exit 2 on any problem."""
    from harness.config import load_topology
    from harness.probe import fault_commands, probe

    topology = load_topology(args.topology, allow_remote=args.allow_remote_targets)
    result = probe(topology)
    print(result.table())
    if args.list_fault_commands:
        with tempfile.TemporaryDirectory(prefix="harness-probe-") as scratch:
            print("\nkernel network faults (--network-faults kernel) would run:")
            print(fault_commands(topology, Path(scratch) / "docker-inspect.log"))
    for warning in result.warnings:
        print(f"harness probe: warning: {warning}", file=sys.stderr)
    for problem in result.problems:
        print(f"harness probe: {problem}", file=sys.stderr)
    if result.problems:
        return 2
    count = len(result.warnings)
    doubts = f" ({count} warning{'s' if count > 1 else ''} above)" if count else ""
    print(f"harness probe: {args.topology} matches the live cluster{doubts}", file=sys.stderr)
    return 0


def cmd_init(args: argparse.Namespace) -> int:
    """Find out the topology from the running cluster; write it (or print it)."""
    from harness.containers import inspect_running, node_containers
    from harness.init import discover, render

    nodes, nodes_https, containers = args.node or [], args.node_https or [], []
    if args.docker is not None:
        if nodes:
            raise HarnessError("give the nodes with --node or find them with --docker, not both")
        containers = node_containers(inspect_running(), [args.entry, args.entry_https or ""],
                                     args.docker or None)
        nodes = [c.endpoints["http"] for c in containers]
        if all("https" in c.endpoints for c in containers):
            nodes_https = [c.endpoints["https"] for c in containers]
        print(f"harness init: nodes {', '.join(c.name for c in containers)} "
              f"({containers[0].group.removeprefix('net:')})", file=sys.stderr)
    greeters: list[dict[str, str]] = [dict(c.endpoints) for c in containers]
    for proto in ("ftp", "smtp"):
        urls = getattr(args, f"node_{proto}") or []
        if urls and not all(u.startswith(f"{proto}://") for u in urls):
            raise HarnessError(f"--node-{proto} takes {proto}:// URLs, not {urls[0]!r}")
        if urls and len(urls) != len(nodes):
            raise HarnessError(f"--node-{proto} is given {len(urls)} times for {len(nodes)} nodes: "
                               "give it once per node, in --node's order, or not at all")
        greeters = greeters or [{} for _ in nodes]
        for greeter, url in zip(greeters, urls):
            greeter[proto] = url
    found = discover(args.entry, nodes, args.path, args.entry_https, nodes_https,
                     args.ca_file, args.insecure, allow_remote=args.allow_remote_targets,
                     containers=containers, greeters=greeters)
    text = render(found, args.ftp_user, args.ftp_password_env, remote=args.allow_remote_targets)
    if args.topology_out is None:
        print(text, end="")
    else:
        args.topology_out.write_text(text)
        remote = " --allow-remote-targets" if args.allow_remote_targets else ""
        print(f"harness init: wrote {args.topology_out} ({len(found.nodes)} nodes, identity by "
              f"{found.http.how}); next: harness probe --topology {args.topology_out}{remote}",
              file=sys.stderr)
    return 0


def cmd_scalability(args: argparse.Namespace) -> int:
    from harness.scalability import run
    from harness.thresholds import Thresholds

    if args.nodes < 2:
        raise HarnessError(f"--nodes must be at least 2, not {args.nodes}")
    values = {name: getattr(args, name) for name in Thresholds.search_fields()}
    for name in ("step_users", "max_steps", "load_processes"):
        if values[name] < 1:
            raise HarnessError(f"{Thresholds.option(name)} must be at least 1, not {values[name]}")
    for name in ("step_rate", "step_seconds", "max_step_p95", "min_served_ratio"):
        if values[name] <= 0:
            raise HarnessError(f"{Thresholds.option(name)} must be positive, not {values[name]}")
    return run(Thresholds(**values), args.output, args.backend, args.nodes, args.mutant,
               args.topology, args.allow_remote_targets, args.load_master, args.abort_file)


def cmd_soak(args: argparse.Namespace) -> int:
    """A soak on a reference cluster (or the topology's): progress on stderr, the report in
    -o DIR, exit 0 if every window passed, 1 if not, 5 aborted."""
    from harness import kernel
    from harness.config import Safety, load_topology
    from harness.injector import network_engine
    from harness.probe import probe
    from harness.soak.plan import SoakPlan, option_values
    from harness.soak.report import write_report
    from harness.soak.run import Soak
    from harness.thresholds import Thresholds
    from harness.traffic.workers import distributed, for_run
    from harness.world import World

    plan = SoakPlan.from_options(option_values(args), keep_logs=args.keep_run_dir)
    safety.stop_conditions(vars(args), Safety())  # a bad option is said before anything runs
    distributed(args.load_workers, args.load_master, None)  # a bad option is said before anything runs
    if args.topology is not None:
        topology = load_topology(args.topology, allow_remote=args.allow_remote_targets)
        nodes = topology.node_ids
        if not args.dry_run and (problems := probe(topology).problems):
            raise HarnessError(f"probe of {args.topology}: {problems[0]}")
    else:
        nodes = [f"node{i}" for i in range(1, args.nodes + 1)]
    if len(nodes) < 2:
        raise HarnessError("--nodes must be at least 2 for a cluster to fail over")
    if plan.max_faulted_nodes is not None and plan.max_faulted_nodes >= len(nodes):
        raise HarnessError(f"--max-faulted-nodes {plan.max_faulted_nodes} would let the soak fault every one "
                           f"of the {len(nodes)} nodes at once: at most {len(nodes) - 1}")
    if args.dry_run:
        print(f"seed {plan.seed}, policy {plan.policy}, nemesis "
              f"{','.join(plan.nemesis) or 'default (those the cluster can inject of: kill,pause,restart,cut,latency,reset_peer)'}")
        for fault in plan.schedule(nodes):
            print(fault)
        return 0

    def say(line: str) -> None:
        print(f"harness: {line}", file=sys.stderr, flush=True)

    safety.install("harness soak", args.abort_file)
    say(f"soak seed {plan.seed} (run it again with --seed {plan.seed})")
    kernel.sweep()
    resolve_backend(args.backend, args.topology)  # a topology with --backend docker: refused, as pytest does
    cluster = start_cluster(args.backend, args.nodes, args.mutant, args.topology, args.allow_remote_targets)
    if args.keep_run_dir:
        os.environ[KEEP_VAR] = "1"  # the cluster's run directory too
    try:
        with (contextlib.nullcontext(tempfile.mkdtemp(prefix="harness-soak-")) if args.keep_run_dir
              else tempfile.TemporaryDirectory(prefix="harness-soak-")) as scratch:
            if args.keep_run_dir:
                say(f"streamed request logs kept in {scratch}")
            cluster.reset()
            with for_run(args.load_workers, args.load_master, cluster.topology if args.topology else None) as spec:
                limits = Thresholds(load_workers=args.load_workers,
                                    max_faulted_nodes=plan.blast_radius(len(cluster.node_ids)))
                world = World(cluster, limits, Path(scratch), ("soak",),
                              network_engine(cluster, args.network_faults), workers=spec,
                              stops=safety.stop_conditions(vars(args), cluster.topology.safety))
                result = Soak(world, plan, say).run()
            files = write_report(result, args.output)
    except safety.Aborted as e:
        say(f"soak ABORTED: {e.why}; faults healed, load stopped, cluster stopping")
        return ABORTED
    except KeyboardInterrupt:
        say("soak interrupted: faults healed, load stopped, cluster stopping")
        return 130
    finally:
        cluster.close()
    say(result.verdict.summary())
    say(f"report: {', '.join(str(f) for f in files.values())}")
    return ABORTED if result.aborted else 0 if result.verdict.passed else 1


LOAD_MASTER_HELP = ("where this machine's master listens for load workers: an address they "
                    "reach it at (default the topology's load.master, else 127.0.0.1:5557)")


ABORTED = 5  # the exit code of a run stopped by `harness abort`, SIGTERM, its abort file or a stop condition


def add_abort_file_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--abort-file", type=Path, default=None, metavar="FILE",
                        help="abort (every fault healed, the load stopped) when this file appears; "
                             "`harness abort` and SIGTERM do the same (exit 5)")


def cmd_abort(args: argparse.Namespace) -> int:
    count = safety.abort_all(args.wait, say=lambda line: print(f"harness abort: {line}"))
    if not count:
        print("harness abort: no run is running on this machine")
    return 0


def add_load_machine_options(parser: argparse.ArgumentParser) -> None:
    from harness.thresholds import Thresholds

    [(option, kind, default, text)] = Thresholds.options(("load_workers",))
    parser.add_argument(option, type=kind, default=default, metavar="N", help=f"{text} (default {default})")
    parser.add_argument("--load-master", default=None, metavar="HOST[:PORT]", help=LOAD_MASTER_HELP)


def cmd_run(args: argparse.Namespace) -> int:
    from harness.contract import run

    if not args.topology.is_file():
        raise HarnessError(f"topology file {str(args.topology)!r} does not exist")
    extra = [*(["-m", args.markexpr] if args.markexpr else []), *(["-k", args.keyword] if args.keyword else []),
             *([f"--junitxml={args.junitxml}"] if args.junitxml else []), *args.pytest_args]
    return run(args.topology.resolve(), extra, args.alluredir, None if args.no_html else args.html,
               args.allow_remote_targets)


def cmd_schema(args: argparse.Namespace) -> int:
    from harness.config import topology_schema

    print(json.dumps(topology_schema(), indent=1, sort_keys=True))
    return 0


def cmd_image(args: argparse.Namespace) -> int:
    from harness.image import build

    tag = build(args.wheel)
    print(f"harness: built {tag} (also tagged clusterproof:{VERSION}); run it on the host's network "
          f"with your topology mounted: docker run --rm --network host -v \"$PWD:/work\" "
          f"clusterproof:{VERSION} run --topology topology.yaml")
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    """A load worker: Locust's, in a process of its own (Locust patches the interpreter)."""
    argv = [sys.executable, "-m", "harness.traffic.worker", "--master", args.master,
            "--idle-timeout", str(args.idle_timeout), *(["--name", args.name] if args.name else []),
            *(["--once"] if args.once else [])]
    os.execv(sys.executable, argv)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="harness", description="Chaos and conformance harness for clustered integration servers.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    up = sub.add_parser("up", help="start a reference cluster and print its endpoints as JSON")
    up.add_argument("--nodes", type=int, default=3, help="number of nodes (default 3)")
    up.add_argument("--backend", choices=[b for b in BACKENDS if b != "external"], default="auto",
                    help="auto (docker if an engine answers, else local), local or docker")
    up.add_argument("--mutant", choices=[m.name for m in MUTANTS], default=None,
                    help="start a broken cluster (see `harness mutants`)")
    up.add_argument("--endpoints-file", type=Path, default=DEFAULT_ENDPOINTS,
                    help=f"where to write the endpoints for `locust -f loadtests/` "
                         f"(default {DEFAULT_ENDPOINTS})")
    up.add_argument("--topology-out", type=Path, default=None, metavar="FILE",
                    help="also write the cluster as an external topology (node control through "
                         "`harness node`), for `pytest scenarios/ --topology FILE`")
    up.set_defaults(run=cmd_up)

    from harness.control import ACTIONS
    node = sub.add_parser("node", help="control a node of the cluster a running `harness up` holds")
    node.add_argument("action", choices=ACTIONS, help="what to do (add prints the new node's id)")
    node.add_argument("node", nargs="?", default=None, help="the node id (not for add)")
    node.add_argument("--socket", type=Path, required=True,
                      help="the control socket `harness up --topology-out` named in the topology")
    node.set_defaults(run=cmd_node)

    dn = sub.add_parser("down", help="stop the cluster `harness up` started; sweep leftovers",
                        description="Stop the cluster `harness up` started and sweep what killed "
                                    "runs left: their processes, containers and kernel fault rules "
                                    "(here, and with --topology on the hosts its nodes name).")
    dn.add_argument("--topology", type=Path, default=None, metavar="FILE",
                    help="also sweep kernel fault rules of dead runs on the nodes' hosts "
                         "(control.ssh, control.network)")
    dn.add_argument("--allow-remote-targets", action="store_true", help=REMOTE_TARGETS_HELP)
    dn.set_defaults(run=cmd_down)
    sub.add_parser("mutants", help="list the mutants: name, property broken, summary").set_defaults(run=cmd_mutants)
    sub.add_parser("doctor", help="list the real components with versions or why they are missing").set_defaults(run=cmd_doctor)

    rep = sub.add_parser("report", help="build the Allure HTML report from results",
                         description="Build the Allure report of a run: OUTPUT/index.html, one "
                                     "file that opens from disk, and OUTPUT/site, the same report "
                                     "as a site (`allure open OUTPUT/site`), whose history the next "
                                     "report's trends carry on.")
    rep.add_argument("results", type=Path, nargs="?", default=Path("reports/allure-results"),
                     metavar="RESULTS",
                     help="the Allure results pytest wrote with --alluredir (default: "
                          "reports/allure-results)")
    rep.add_argument("-o", "--output", type=Path, default=Path("reports/allure-report"),
                     help="where the report goes (default: reports/allure-report)")
    rep.set_defaults(run=cmd_report)

    pr = sub.add_parser("probe", help="check a topology file against the live cluster (exit 2 on any problem)")
    pr.add_argument("--topology", type=Path, required=True, metavar="FILE",
                    help="the topology of the cluster to probe")
    pr.add_argument("--allow-remote-targets", action="store_true", help=REMOTE_TARGETS_HELP)
    pr.add_argument("--list-fault-commands", action="store_true",
                    help="also list the iptables and tc commands kernel network faults would "
                         "run on each node's links, and their undo (nothing is run)")
    pr.set_defaults(run=cmd_probe)

    ini = sub.add_parser("init", help="write a topology from the running cluster: what names "
                                      "each node, greetings, TLS, claims (then: harness probe)")
    ini.add_argument("--entry", required=True, metavar="URL", help="the cluster's HTTP address")
    ini.add_argument("--entry-https", metavar="URL", help="the cluster's HTTPS address")
    ini.add_argument("--node", action="append", metavar="URL",
                     help="a node's own HTTP address (once per node; FTP and SMTP are looked for "
                          "on its host at ports 21/2121 and 25/2525/587)")
    ini.add_argument("--docker", nargs="?", const="", metavar="NAME",
                     help="find the nodes among the running containers that publish HTTP on "
                          "loopback (of compose project or network NAME, where several are), "
                          "with their FTP and SMTP ports and control.docker")
    ini.add_argument("--node-https", action="append", metavar="URL",
                     help="a node's own HTTPS address (once per node, in --node's order)")
    for proto, where in (("ftp", "21/2121"), ("smtp", "25/2525/587")):
        ini.add_argument(f"--node-{proto}", action="append", metavar="URL",
                         help=f"a node's own {proto.upper()} address (once per node, in --node's "
                              f"order), where it is not at the node's host on port {where}")
    ini.add_argument("--path", default="/", help="what to GET: a page or service whose answer "
                                                 "names the node (default: /)")
    ini.add_argument("--ca-file", help="the cluster's CA, where the system CAs do not verify it")
    ini.add_argument("--insecure", action="store_true",
                     help="accept HTTPS that verifies against nothing (tls.insecure: not checked)")
    ini.add_argument("--ftp-user", help="the FTP user, where an anonymous login is refused")
    ini.add_argument("--ftp-password-env", metavar="VAR",
                     help="the environment variable holding the FTP user's password")
    ini.add_argument("--topology-out", type=Path, metavar="FILE",
                     help="where to write the topology (default: print it)")
    ini.add_argument("--allow-remote-targets", action="store_true", help=REMOTE_TARGETS_HELP)
    ini.set_defaults(run=cmd_init)

    sc = sub.add_parser(
        "scalability", help="saturated throughput with N nodes, then N+1 (JSON and a plot)",
        description="Step the load up until the cluster saturates, add a node, do it again; "
                    "write scalability.json and scalability.png. Saturation is found, not "
                    "assumed: a search the generator limited, or that the cluster served in "
                    "full, is inconclusive. Exit 0 passed, 1 violated, 2 bad input, 3 inconclusive, "
                    "5 aborted (harness abort, SIGTERM).")
    sc.add_argument("--topology", type=Path, default=None, metavar="FILE",
                    help="measure this cluster (needs evidence.scale.add and .remove); default: "
                         "a reference cluster of its own")
    sc.add_argument("--allow-remote-targets", action="store_true", help=REMOTE_TARGETS_HELP)
    sc.add_argument("--nodes", type=int, default=3, metavar="N", help="N, for the reference cluster (default 3)")
    sc.add_argument("--backend", choices=BACKENDS, default="auto",
                    help="where the reference cluster runs (default auto)")
    sc.add_argument("--mutant", choices=[m.name for m in MUTANTS], default=None, metavar="NAME",
                    help="measure a broken reference cluster (lb_ignores_new_nodes)")
    from harness.thresholds import Thresholds
    for option, kind, default, text in Thresholds.options(Thresholds.search_fields()):
        sc.add_argument(option, type=kind, default=default, metavar="X", help=f"{text} (default {default})")
    sc.add_argument("--load-master", default=None, metavar="HOST[:PORT]", help=LOAD_MASTER_HELP)
    add_abort_file_option(sc)
    sc.add_argument("-o", "--output", type=Path, default=Path("reports"),
                    help="the folder for scalability.json and scalability.png (default %(default)s)")
    sc.set_defaults(run=cmd_scalability)
    so = sub.add_parser("soak", help="load on every protocol and a seeded fault schedule for "
                                     "minutes, judged window by window",
                        description="Load on HTTP, HTTPS, FTP and SMTP through the whole run, faults "
                                    "drawn from --nemesis by --seed (the same seed replays the same "
                                    "schedule), the contract checked per fault window and quiet "
                                    "period, exactly-once at the end. Exit 0 if all passed, 1 if "
                                    "not, 2 on bad input, 5 aborted (harness abort, SIGTERM, a "
                                    "stop condition).")
    add_soak_options(so.add_argument)
    safety.add_stop_options(so.add_argument)
    so.add_argument("--dry-run", action="store_true", help="print the seed and the schedule; run nothing")
    so.add_argument("--backend", choices=BACKENDS, default="auto",
                    help="where the reference cluster runs (default auto: docker if an engine answers)")
    so.add_argument("--nodes", type=int, default=3, help="nodes of the reference cluster (default 3)")
    so.add_argument("--mutant", choices=[m.name for m in MUTANTS], default=None, metavar="NAME",
                    help="soak a broken reference cluster (one of `harness mutants`)")
    so.add_argument("--topology", type=Path, default=None, metavar="FILE",
                    help="soak an external cluster described by this topology")
    so.add_argument("--allow-remote-targets", action="store_true", help=REMOTE_TARGETS_HELP)
    so.add_argument("--network-faults", choices=("auto", "toxiproxy", "kernel"), default="auto",
                    help="what injects network faults (default auto)")
    so.add_argument("-o", "--output", type=Path, default=Path("reports/soak"), metavar="DIR",
                    help="where the timeline, window table and worst windows' logs go (default %(default)s)")
    so.add_argument("--keep-run-dir", action="store_true",
                    help="keep the streamed request logs and the cluster's run directory")
    add_load_machine_options(so)
    add_abort_file_option(so)
    so.set_defaults(run=cmd_soak)
    rn = sub.add_parser(
        "run", help="judge your cluster: probe it, run the properties its topology claims, write "
                    "the report; exit 0 passed, 1 violated, 2 configuration, 3 inconclusive, 4 harness error, 5 aborted",
        description="Probe the topology against the live cluster, run the scenarios of the "
                    "properties it claims (pytest --pyargs harness.scenarios: pytest's own options "
                    "may follow), write the Allure results and the HTML report. Exit 0 every "
                    "claimed property that ran passed, 1 a contract violated, 2 bad input or a "
                    "configuration error, 3 inconclusive (no violation, not enough evidence), 4 the "
                    "harness could not run a scenario, 5 aborted (harness abort, SIGTERM, --abort-file or a "
                    "stop condition; every fault healed). Writes only where it is told.")
    rn.add_argument("--topology", type=Path, required=True, metavar="FILE", help="your cluster")
    rn.add_argument("-m", dest="markexpr", metavar="EXPR",
                    help="only these properties or protocols, as pytest's -m (e.g. 'lb or failover')")
    rn.add_argument("-k", dest="keyword", metavar="EXPR", help="only scenarios matching, as pytest's -k")
    rn.add_argument("--alluredir", type=Path, default=Path("reports/allure-results"), metavar="DIR",
                    help="the Allure results (default %(default)s, in this folder)")
    rn.add_argument("--html", type=Path, default=Path("reports/allure-report"), metavar="DIR",
                    help="the HTML report, where Allure's command line is installed (default %(default)s)")
    rn.add_argument("--no-html", action="store_true", help="write the Allure results only")
    rn.add_argument("--junitxml", type=Path, metavar="FILE", help="also a JUnit XML report")
    rn.add_argument("--allow-remote-targets", action="store_true", help=REMOTE_TARGETS_HELP)
    rn.set_defaults(run=cmd_run, pytest_args=[])
    img = sub.add_parser("image", help="build the clusterproof container image from this checkout")
    img.add_argument("--wheel", type=Path, default=None, metavar="FILE",
                     help="the wheel to put in it (default: built from the checkout)")
    img.set_defaults(run=cmd_image)
    sch = sub.add_parser("schema", help="the topology's JSON Schema, for editors to validate and complete")
    sch.set_defaults(run=cmd_schema)
    ab = sub.add_parser("abort", help="the kill switch: abort every run on this machine, every fault "
                                      "healed and every load stopped",
                        description="Send every running harness run on this machine (pytest "
                                    "scenarios, soaks, capacity runs) SIGTERM: each heals every "
                                    "fault in force and stops its load on the way out, and ends "
                                    "aborted (exit 5); then replay the journals of any that died.")
    ab.add_argument("--wait", type=float, default=60.0, metavar="S",
                    help="how long to wait for the runs to end (default %(default)s)")
    ab.set_defaults(run=cmd_abort)
    wk = sub.add_parser(
        "worker", help="a load worker for a harness run on another machine (Locust's distributed mode)",
        description="Connect to the master a harness run starts for each load (--load-workers N "
                    "there), run the users it gives, ship the request records back, and wait for "
                    "the next load; stop after --idle-timeout without a master, or on Ctrl-C. It "
                    "must run the master's harness version. Secrets the topology names "
                    "(password_env, ...) come from this machine's environment.")
    wk.add_argument("--master", required=True, metavar="HOST[:PORT]",
                    help="where the run's master listens (its --load-master; port 5557 by default)")
    wk.add_argument("--name", default=None, help="how the run names this worker (default host:pid)")
    wk.add_argument("--idle-timeout", type=float, default=600.0, metavar="S",
                    help="stop when no master has come for this long (default %(default)s)")
    wk.add_argument("--once", action="store_true", help="stop after one load")
    wk.set_defaults(run=cmd_worker)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, rest = parser.parse_known_args(argv)
    if rest and args.run is not cmd_run:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    args.pytest_args = rest  # `run` passes what it does not know to pytest (its thresholds, -x, ...)
    run: Callable[[argparse.Namespace], int] = args.run
    try:
        return run(args)
    except HarnessError as e:
        print(f"harness: {e}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # the reader went away (`harness doctor | head`): nothing to say
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
