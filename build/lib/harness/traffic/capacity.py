"""Capacity runs the Locust way: options, the cluster's users, per-node accounting, a step shape.

Imported only by Locust processes (the locustfiles in `loadtests/`), never by pytest. The
seams are Locust's own events:

* `init_command_line_parser` adds the options (shown by `locust -f loadtests/ --help`);
* `init` (master, local runner) and `test_start` (workers, once the master's options have
  arrived) configure the user classes: topology, weights, wait time, service;
* `request` feeds the per-node accounting; workers ship their counts to the master with
  `report_to_master` / `worker_report`, as Locust does with its own stats;
* `quitting` prints the per-node table and writes it beside Locust's CSV and HTML reports.

`StepLoadShape` is the saturation search of C13 and `harness scalability` for Locust users:
the same options (`harness.thresholds`: `--step-users`, `--step-rate`, `--step-seconds`,
`--max-steps`, `--max-step-p95`, `--min-served-ratio`, `--error-budget`), the same judgement
of each step (`harness.saturation`), from Locust's own counts.
"""

from __future__ import annotations

import csv
import json
import sys
from collections import Counter
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from locust import LoadTestShape, constant, constant_throughput, events
from locust.argument_parser import LocustArgumentParser
from locust.env import Environment
from locust.runners import MasterRunner, WorkerRunner

from harness.config import Endpoints, NodeSpec, Topology, load_topology
from harness.errors import HarnessError
from harness.saturation import Bounds, StepFigures, capacity, ends_search, past_saturation
from harness.thresholds import Thresholds
from harness.traffic.cpu import CpuDemand
from harness.traffic.steps import histogram_delta, percentile
from harness.traffic.users import FtpUploadUser, HttpServiceUser, SmtpSendUser

DEFAULT_ENDPOINTS = "reports/endpoints.json"
STEP_FIELDS = ("step_users", "step_rate", "step_seconds", "max_steps", "max_step_p95",
               "min_served_ratio", "error_budget")  # the search's, as harness scalability has them
DEFAULT_NODES_CSV = "reports/capacity_nodes.csv"
UNKNOWN_NODE = "?"


class ClusterHttpUser(HttpServiceUser):
    """Calls a service through the cluster's HTTP entry point."""

    protocol = "http"


class ClusterHttpsUser(HttpServiceUser):
    """Calls a service through the cluster's HTTPS entry point, verifying the run's CA."""

    protocol = "https"


class ClusterFtpUser(FtpUploadUser):
    """Uploads to one node's own FTP endpoint (FTP is never balanced)."""


class ClusterSmtpUser(SmtpSendUser):
    """Sends mail to one node's own SMTP endpoint (SMTP is never balanced)."""


USER_CLASSES = {"http": ClusterHttpUser, "https": ClusterHttpsUser,
                "ftp": ClusterFtpUser, "smtp": ClusterSmtpUser}


def add_arguments(parser: LocustArgumentParser) -> None:
    group = parser.add_argument_group("cluster (harness)")
    group.add_argument("--endpoints-file", default=DEFAULT_ENDPOINTS,
                       help="endpoints written by `harness up` (default %(default)s)")
    group.add_argument("--topology", default="", help="a topology YAML file instead of the endpoints file")
    group.add_argument("--service", default="harness.demo:whoami",
                       help="service the HTTP(S) users call, with parameters as a query: "
                            "'harness.demo:slow?delay=50' (default %(default)s)")
    for protocol, weight in (("http", 3), ("https", 1), ("ftp", 1), ("smtp", 1)):
        group.add_argument(f"--{protocol}-weight", type=int, default=weight,
                           help=f"weight of the {protocol.upper()} user (0 disables it; default %(default)s)")
    group.add_argument("--user-rate", type=float, default=0.0,
                       help="requests per second per user; 0 = back to back (default; with the "
                            "step shape, --step-rate)")
    group.add_argument("--nodes-csv", default="",
                       help=f"per-node table; default <--csv prefix>_nodes.csv or {DEFAULT_NODES_CSV}")
    step = parser.add_argument_group("step load shape (loadtests/_step_shape.py): the saturation "
                                     "search of C13 and harness scalability")
    for option, kind, default, text in Thresholds.options(STEP_FIELDS):
        step.add_argument(option, type=kind, default=default, help=f"{text} (default {default})")
    step.add_argument("--step-report", default="reports/capacity_steps.json",
                      help="where the steps and what ended the search go (default %(default)s)")


def resolve_topology(options: Any) -> Topology:
    """The cluster to load: a topology file, else `harness up`'s endpoints file, else --host."""
    if options.topology:
        topology = load_topology(options.topology, allow_remote=False)
    elif Path(options.endpoints_file).exists():
        data = json.loads(Path(options.endpoints_file).read_text())
        if "topology" not in data:
            raise HarnessError(f"{options.endpoints_file} has no 'topology'; write it with `harness up`")
        topology = Topology.model_validate(data["topology"])
    elif options.host:
        entry = {urlsplit(options.host).scheme: options.host}
        # Nodes unknown: HTTP(S) through the entry only; answers are still counted by X-Node-Id.
        return Topology(name="host", nodes=[NodeSpec(id="unnamed", endpoints=Endpoints())],
                        entry=Endpoints(**entry))
    else:
        raise HarnessError(f"no cluster to load: start one with `harness up` (it writes "
                           f"{options.endpoints_file}), or pass --topology FILE or --host URL")
    if options.host:  # --host names the entry point to use, as Locust users expect
        scheme = urlsplit(options.host).scheme
        if scheme not in ("http", "https"):
            raise HarnessError(f"--host must be an http:// or https:// URL, not {options.host!r}")
        topology = topology.model_copy(update={"entry": topology.entry.model_copy(update={scheme: options.host})})
    return topology


def configure(environment: Environment) -> None:
    """Give the user classes the cluster, the weights and the service from the options."""
    options = environment.parsed_options
    if options is None or not hasattr(options, "endpoints_file"):
        return
    topology = resolve_topology(options)
    verify: str | bool = str(topology.tls.ca_file) if topology.tls.ca_file else not topology.tls.insecure
    service, _, query = options.service.partition("?")
    # a saturation search offers a known load: each user at --step-rate
    rate = options.step_rate if isinstance(environment.shape_class, StepLoadShape) else options.user_rate
    wait = constant_throughput(rate) if rate > 0 else constant(0)
    for protocol, cls in USER_CLASSES.items():
        weight = getattr(options, f"{protocol}_weight")
        if weight < 0:
            raise HarnessError(f"--{protocol}-weight must be 0 or more, not {weight}")
        if protocol in ("http", "https"):
            reachable = topology.entry.get(protocol) is not None
            cls.service, cls.params = service, dict(parse_qsl(query))
        else:
            reachable = all(n.endpoints.get(protocol) for n in topology.nodes)
        cls.topology, cls.verify, cls.wait_time = topology, verify, wait
        cls.weight = weight if reachable else 0
        cls.abstract = False
    if not any(cls.weight for cls in USER_CLASSES.values()):
        raise HarnessError("every user's weight is 0 or its protocol has no endpoint in the topology")


class NodeAccounting:
    """Requests per (protocol, serving node), merged from workers in distributed runs."""

    def __init__(self) -> None:
        self.counts: Counter[tuple[str, str]] = Counter()
        self.failures: Counter[tuple[str, str]] = Counter()

    def on_request(self, request_type: str, exception: object = None, context: Any = None,
                   **_: Any) -> None:
        node = (context or {}).get("node") or UNKNOWN_NODE
        self.counts[(request_type, node)] += 1
        if exception is not None:
            self.failures[(request_type, node)] += 1

    def report(self, client_id: str, data: dict[str, Any]) -> None:
        data["harness_nodes"] = [[p, n, c, self.failures[(p, n)]] for (p, n), c in self.counts.items()]
        self.counts.clear()
        self.failures.clear()

    def merge(self, client_id: str, data: dict[str, Any]) -> None:
        for protocol, node, count, failed in data.get("harness_nodes", []):
            self.counts[(protocol, node)] += count
            self.failures[(protocol, node)] += failed

    def rows(self) -> list[dict[str, Any]]:
        total = sum(self.counts.values()) or 1
        per_protocol = Counter[str]()
        for (protocol, _), count in self.counts.items():
            per_protocol[protocol] += count
        return [{"protocol": p, "node": n, "requests": c, "failures": self.failures[(p, n)],
                 "share_of_protocol": round(c / per_protocol[p], 4), "share_of_all": round(c / total, 4)}
                for (p, n), c in sorted(self.counts.items())]

    def table(self) -> str:
        lines = [f"{'Protocol':<8} {'Node':<12} {'Requests':>9} {'Fails':>6} {'Share':>7}"]
        lines += [f"{r['protocol']:<8} {r['node']:<12} {r['requests']:>9} {r['failures']:>6} "
                  f"{r['share_of_protocol']:>7.1%}" for r in self.rows()]
        return "\n".join(lines)

    def write_csv(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=["protocol", "node", "requests", "failures",
                                                   "share_of_protocol", "share_of_all"])
            writer.writeheader()
            writer.writerows(self.rows())


ACCOUNTING = NodeAccounting()


def nodes_csv_path(options: Any) -> Path:
    if options.nodes_csv:
        return Path(options.nodes_csv)
    if getattr(options, "csv_prefix", None):
        return Path(f"{options.csv_prefix}_nodes.csv")
    return Path(DEFAULT_NODES_CSV)


def _fail(error: HarnessError) -> None:
    print(f"harness: {error}", file=sys.stderr)
    sys.exit(2)


def install(environment: Environment, **_: Any) -> None:
    """Configure the users and wire the accounting into this Locust process (on `init`)."""
    if not isinstance(environment.runner, WorkerRunner):  # workers wait for the master's options
        try:
            configure(environment)
        except HarnessError as e:
            _fail(e)
    environment.events.request.add_listener(ACCOUNTING.on_request)
    if isinstance(environment.runner, WorkerRunner):
        environment.events.report_to_master.add_listener(ACCOUNTING.report)
    elif isinstance(environment.runner, MasterRunner):
        environment.events.worker_report.add_listener(ACCOUNTING.merge)
    if environment.web_ui is not None:
        @environment.web_ui.app.route("/harness/nodes")
        def nodes() -> Any:
            return {"nodes": ACCOUNTING.rows()}


def on_test_start(environment: Environment, **_: Any) -> None:
    if isinstance(environment.runner, WorkerRunner):
        try:
            configure(environment)  # the master's options arrived with the spawn message
        except HarnessError as e:
            _fail(e)


def on_quitting(environment: Environment, **_: Any) -> None:
    if isinstance(environment.runner, WorkerRunner) or environment.parsed_options is None:
        return
    if not ACCOUNTING.counts:
        return
    path = nodes_csv_path(environment.parsed_options)
    ACCOUNTING.write_csv(path)
    print("\nRequests per node\n" + ACCOUNTING.table() + f"\n(written to {path})", flush=True)


def register() -> None:
    """Called once by the locustfile: hook the module into Locust's events."""
    events.init_command_line_parser.add_listener(add_arguments)
    events.init.add_listener(install)
    events.test_start.add_listener(on_test_start)
    events.quitting.add_listener(on_quitting)


class StepLoadShape(LoadTestShape):
    """Add `--step-users` every `--step-seconds` until a step is past saturation or the
    generator is at its limit (`harness.saturation`), then stop.

    Each step is judged on its last two thirds, from the difference of Locust's cumulative
    counts (so a slow first second does not colour later steps); what it offered is its users
    times `--step-rate`. The generator's demand is this process's (`CpuDemand`) in a local
    run, the busiest worker's CPU as Locust's heartbeats report it in a distributed one.
    """

    def __init__(self) -> None:
        super().__init__()
        self.steps: list[StepFigures] = []
        self._start: float | None = None
        self._judged: tuple[float, int, int, dict[int, int]] | None = None
        self._cpu = CpuDemand()
        self._done = False

    def _options(self) -> Any:
        return self.runner.environment.parsed_options  # type: ignore[union-attr]

    def _snapshot(self, now: float) -> tuple[float, int, int, dict[int, int]]:
        total = self.runner.stats.total  # type: ignore[union-attr]
        return now, total.num_requests, total.num_failures, dict(total.response_times)

    def _generator(self) -> tuple[float | None, str]:
        if isinstance(self.runner, MasterRunner):
            usage = {c.id: c.cpu_usage / 100 for c in self.runner.clients.values()}
            if not usage:
                return None, ""
            worker = max(usage, key=lambda w: usage[w])
            return usage[worker], f"worker {worker}"
        return self._cpu.since_mark(), "load process"

    def tick(self) -> tuple[int, float] | None:
        if self._done:
            return None
        o, now = self._options(), self.get_run_time()
        number = len(self.steps) + 1
        if self._start is None:
            self._start = now
            self._cpu.mark()
        elif self._judged is None and now >= self._start + o.step_seconds / 3:
            self._judged = self._snapshot(now)
        elif self._judged is not None and now >= self._start + o.step_seconds:
            self._close_step(number, now)
            last = self.steps[-1]
            if ends_search(last) or last.number >= o.max_steps:
                self._finish()
                return None
            number += 1
            self._start, self._judged = now, None
            self._cpu.mark()
        users = number * o.step_users
        return users, float(max(o.step_users * 10, 1))

    def _close_step(self, number: int, now: float) -> None:
        o = self._options()
        start, requests0, failures0, times0 = self._judged  # type: ignore[misc]
        _, requests1, failures1, times1 = self._snapshot(now)
        seconds, answers, failed = now - start, requests1 - requests0, failures1 - failures0
        served_rps = (answers - failed) / seconds if seconds > 0 else 0.0
        p95 = percentile(histogram_delta(times0, times1), 0.95) / 1000
        errors = failed / answers if answers else 0.0
        offered = number * o.step_users * o.step_rate
        busy, generator = self._generator()
        bounds = Bounds(o.min_served_ratio, o.max_step_p95, o.error_budget)
        step = StepFigures(number, number * o.step_users, offered, round(seconds, 2), answers,
                           round(served_rps, 1), p95, round(errors, 4),
                           None if busy is None else round(busy, 3), generator,
                           past_saturation(offered, served_rps, p95, errors, answers, bounds))
        self.steps.append(step)
        print(f"step {number}: {step.users} users, {offered:.0f} req/s offered, {step.served_rps:.0f} "
              f"served, p95 {p95 * 1000:.0f} ms, errors {errors:.1%}"
              f"{'  <- ' + step.past if step.past else ''}", flush=True)

    def _finish(self) -> None:
        self._done = True
        found = capacity(self.steps)
        path = Path(self._options().step_report)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(found.as_dict(), indent=2))
        print(f"{found.says()} (steps in {path})", flush=True)

