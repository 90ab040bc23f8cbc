"""Benchmarks: what the harness costs and how precisely it measures, side by side in one run.

    .venv/bin/python bench/run.py [--sections start,scenarios,load,processes,workers,failover,toxiproxy,soak]
                                  [--kills 8] [--seconds 5] [--cold-base]
                                  [--soak-minutes 30] [--soak-rate 500]

Writes `reports/bench.json` and `reports/bench.md` (the table it prints). Nothing here asserts
a figure: machines are noisy, so every comparison is a ratio of two things measured in the
same run on the same machine.

* start: a 3-node cluster, cold (a fresh process; for docker also the images rebuilt, the
  Debian base kept unless --cold-base) and warm (in process, after one start), and add_node;
* scenarios: wall time of the whole `pytest scenarios/` per backend;
* load generation: one Locust process against one reference node, through Locust's
  FastHttpUser and through the harness's own users (HTTP, and HTTPS beside it), against wrk
  with the same connections and duration; and wrk with more connections, for the node's own
  ceiling;
* processes: the harness's users in one Locust process and over two, against nginx (a
  target cheap enough not to be the bottleneck; its wrk ceiling is shown beside);
* workers: the same load from 1, 2 and 3 load workers (Locust's distributed mode, the
  harness the master), each on a load machine of its own (a network namespace) held to the
  same CPU quota, against nginx: each worker's rate and the efficiency against one; and, per
  process under the same quota, wrk, FastHttpUser and the harness's users locally;
* failover resolution: the failover gap the harness reports for a kill, against the gap in
  the nodes' own log of answers (wall clock, written as each answer goes out), over repeated
  kills;
* Toxiproxy: latency and throughput of a node directly and through its healthy proxy;
* soak: resident memory of `harness soak` and of its load generators over a long soak (30
  minutes at 500 requests/s by default), and the size of its compressed request log.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from harness import checks  # noqa: E402
from harness.cluster.backends import start_cluster  # noqa: E402
from harness.cluster.local import LocalCluster  # noqa: E402
from harness.cluster.reference import NODE_PORTS  # noqa: E402
from harness.fault_kinds import Fault  # noqa: E402
from harness.injector import FaultInjector  # noqa: E402
from harness.history.timeline import FaultKind  # noqa: E402
from harness.traffic.load import Load  # noqa: E402

WHOAMI = "/invoke/harness.demo:whoami"
SECTIONS = ("start", "scenarios", "load", "processes", "workers", "failover", "toxiproxy", "soak")
REPORTS = ROOT / "reports"


def say(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)


def seconds(fn: Callable[[], Any]) -> tuple[Any, float]:
    start = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - start


def spread(values: list[float]) -> dict[str, float]:
    return {"mean": round(statistics.mean(values), 4), "stdev": round(statistics.pstdev(values), 4),
            "min": round(min(values), 4), "max": round(max(values), 4), "n": len(values)}


# -- cluster start ----------------------------------------------------------------------------

def cold_start(backend: str, cold_base: bool) -> float:
    """From a fresh `harness up` process to a cluster answering from every node."""
    if backend == "docker":
        ids = subprocess.run(["docker", "images", "-q", "--filter", "label=io.harness.image"],
                             capture_output=True, text=True).stdout.split()
        if ids:
            subprocess.run(["docker", "rmi", "-f", *ids], capture_output=True)
        if cold_base:
            subprocess.run(["docker", "rmi", "-f", "debian:bookworm-slim"], capture_output=True)
    with tempfile.TemporaryDirectory() as tmp:
        endpoints = Path(tmp) / "endpoints.json"
        start = time.perf_counter()
        up = subprocess.Popen([sys.executable, "-m", "harness.cli", "up", "--backend", backend, "--nodes", "3",
                               "--endpoints-file", str(endpoints)], cwd=ROOT,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        while not endpoints.exists():
            if up.poll() is not None:
                raise SystemExit(f"bench: harness up failed: {up.stderr.read()[-500:]}")
            time.sleep(0.01)
        elapsed = time.perf_counter() - start
        up.send_signal(signal.SIGTERM)
        up.wait(timeout=60)
    return elapsed


def warm_starts(backend: str, repeats: int = 3) -> dict[str, Any]:
    starts, adds = [], []
    for _ in range(repeats):
        cluster, took = seconds(lambda: start_cluster(backend, 3, announce=False))
        with cluster:
            starts.append(took)
            adds.append(seconds(lambda: cluster.wait_in_rotation([cluster.add_node()]))[1])
    return {"warm_s": spread(starts), "add_node_s": spread(adds)}


# -- the scenario suite -----------------------------------------------------------------------

def scenario_suite(backend: str) -> dict[str, Any]:
    done, took = seconds(lambda: subprocess.run(
        [sys.executable, "-m", "pytest", "scenarios/", "--backend", backend, "-q", "-p", "no:cacheprovider"],
        cwd=ROOT, capture_output=True, text=True, timeout=1800))
    summary = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else ""
    return {"wall_s": round(took, 1), "exit": done.returncode, "summary": summary}


# -- load generation --------------------------------------------------------------------------

def wrk(url: str, connections: int, threads: int, duration_s: float) -> dict[str, float]:
    out = subprocess.run(["wrk", f"-t{threads}", f"-c{connections}", f"-d{round(duration_s)}s", "--latency", url],
                         capture_output=True, text=True, timeout=duration_s + 30).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p50 = re.search(r"50%\s+([\d.]+)(us|ms|s)\b", out)
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}
    return {"rps": round(rps, 1), "p50_ms": round(float(p50.group(1)) * scale[p50.group(2)], 3) if p50 else -1}


CPU_CGROUPS = Path("/sys/fs/cgroup/cpu")  # cgroup v1's cpu controller, as on this machine


@contextlib.contextmanager
def cpu_quota(cores: float | None, name: str = "") -> Iterator[list[str]]:
    """A command prefix that runs a command (and the processes it forks) held to `cores` CPUs
    by a CFS quota in a cgroup of its own (`name` tells several apart), removed afterwards;
    no prefix for None."""
    if cores is None:
        yield []
        return
    group = CPU_CGROUPS / f"harness-bench-{os.getpid()}{name}"
    group.mkdir()
    try:
        (group / "cpu.cfs_period_us").write_text("100000")
        (group / "cpu.cfs_quota_us").write_text(str(int(cores * 100000)))
        yield ["sh", "-c", f'echo $$ > {group}/cgroup.procs && exec "$@"', "sh"]
    finally:
        for _ in range(50):  # the last process may still be leaving the group
            try:
                group.rmdir()
                break
            except OSError:
                time.sleep(0.1)


def locust_run(args: list[str], users: int, duration_s: float, cores: float | None = None) -> dict[str, float]:
    """A headless Locust run: requests per second, and the CPU seconds its processes used
    (the run's, workers included: children the run waited for); held to `cores` CPUs if given."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    with tempfile.TemporaryDirectory() as tmp, cpu_quota(cores) as prefix:
        stats = Path(tmp) / "stats"
        subprocess.run([*prefix, sys.executable, "-m", "locust", *args, "--headless", "-u", str(users),
                        "-r", str(users), "-t", f"{duration_s}s", "--json-file", str(stats), "--only-summary"],
                       cwd=ROOT, capture_output=True, text=True, timeout=duration_s + 60)
        entries = json.loads(stats.with_suffix(".json").read_text())
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    total = sum(e["num_requests"] for e in entries)
    start = min(e["start_time"] for e in entries)
    end = max(e["last_request_timestamp"] for e in entries)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"rps": round(total / (end - start), 1) if end > start else 0.0,
            "requests_per_cpu_s": round(total / cpu, 1) if cpu else 0.0}


def locust_rps(args: list[str], users: int, duration_s: float) -> float:
    return locust_run(args, users, duration_s)["rps"]


def session_cpu_s(session: int) -> float:
    """CPU seconds used so far by the processes of a session (nginx's master and worker)."""
    ticks = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[3]) == session:
            ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def harness_users(host: str | None = None, topology: Path | None = None, https: bool = False) -> list[str]:
    """`locust -f loadtests/` with only the HTTP (or HTTPS) user, calling whoami back to back."""
    where = ["--host", host] if host else ["--topology", str(topology)]
    return ["-f", "loadtests/", *where, "--endpoints-file", "/nonexistent", "--ftp-weight", "0",
            "--smtp-weight", "0", "--http-weight", "0" if https else "1", "--https-weight", "1" if https else "0"]


def load_generation(duration_s: float) -> dict[str, Any]:
    """One Locust process against one reference node, HTTP and HTTPS, beside wrk."""
    connections = 8
    with LocalCluster(1) as cluster, tempfile.TemporaryDirectory() as tmp:
        node = cluster.layout.node(1)
        http, https = f"http://{node}:{NODE_PORTS['http']}", f"https://{node}:{NODE_PORTS['https']}"
        topology = Path(tmp) / "https.yaml"
        topology.write_text(json.dumps({  # JSON is YAML: the node over HTTPS, its CA trusted
            "nodes": [{"id": "node1", "endpoints": {"https": https}}], "entry": {"https": https},
            "tls": {"ca_file": str(cluster.ca.ca_file)}}))
        wrk_http = wrk(http + WHOAMI, connections, 1, duration_s)
        fast = locust_rps(["-f", "bench/fast_user.py", "--host", http], connections, duration_s)
        harness = locust_rps(harness_users(http), connections, duration_s)
        wrk_https = wrk(https + WHOAMI, connections, 1, duration_s)
        harness_https = locust_rps(harness_users(topology=topology, https=True), connections, duration_s)
        ceiling = wrk(http + WHOAMI, 32, 2, duration_s)
    return {"connections": connections, "duration_s": duration_s, "wrk": wrk_http,
            "locust_fasthttp_rps": fast, "locust_harness_users_rps": harness, "node_ceiling_wrk_32c": ceiling,
            "fasthttp_to_wrk": round(fast / wrk_http["rps"], 3),
            "harness_users_to_wrk": round(harness / wrk_http["rps"], 3),
            "https": {"wrk": wrk_https, "locust_harness_users_rps": harness_https,
                      "harness_users_to_wrk": round(harness_https / wrk_https["rps"], 3)}}


def nginx_target(directory: Path, host: str = "127.0.0.1") -> tuple[subprocess.Popen[bytes], str]:
    """nginx answering every request with a fixed body and an X-Node-Id: a target far
    cheaper per request than a Python load generator, so the generator is what is measured."""
    with socket.socket() as probe:
        probe.bind((host, 0))
        port = probe.getsockname()[1]
    conf = directory / "nginx.conf"
    conf.write_text(f"""daemon off; worker_processes 1; pid {directory}/nginx.pid;
error_log {directory}/error.log warn;
events {{ worker_connections 1024; }}
http {{ access_log off;
  client_body_temp_path {directory}; proxy_temp_path {directory}; fastcgi_temp_path {directory};
  uwsgi_temp_path {directory}; scgi_temp_path {directory};
  server {{ listen {host}:{port}; keepalive_requests 1000000;
    location / {{ add_header X-Node-Id nginx always; return 200 "ok"; }} }} }}
""")
    proc = subprocess.Popen(["nginx", "-c", str(conf), "-p", str(directory)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    url = f"http://{host}:{port}"
    for _ in range(100):
        try:
            requests.get(url, timeout=0.2)
            return proc, url
        except requests.RequestException:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError("nginx did not start for the processes benchmark")


def processes(duration_s: float) -> dict[str, Any]:
    """The harness's HTTP users in one Locust process, then spread over two (`--processes 2`),
    against nginx. That nginx is not the bottleneck shows twice: wrk gets several times more
    out of it, and its own CPU use during the two-process run is a fraction of a core. What
    bounds two processes on a 2-core machine is the cores they share with nginx and the
    kernel's loopback work; requests per generator CPU-second show whether a process got
    less efficient (it should not). Then both again with each process held to half a core by
    a CPU quota: one core of generators at most, the other free for nginx and the kernel, so
    the ratio shows how the generator scales with processes when cores are not shared."""
    users = 16
    with tempfile.TemporaryDirectory() as tmp:
        proc, url = nginx_target(Path(tmp))
        try:
            one = locust_run(harness_users(url), users, duration_s)
            nginx_before, started = session_cpu_s(proc.pid), time.monotonic()
            two = locust_run([*harness_users(url), "--processes", "2"], users, duration_s)
            nginx_share = (session_cpu_s(proc.pid) - nginx_before) / (time.monotonic() - started)
            ceiling = wrk(url + WHOAMI, 32, 1, duration_s)
            half = locust_run(harness_users(url), users, duration_s, cores=0.5) if CPU_CGROUPS.is_dir() else None
            two_halves = (locust_run([*harness_users(url), "--processes", "2"], users, duration_s, cores=1.0)
                          if half else None)
        finally:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=10)
    held = {} if not (half and two_halves) else {"half_core_each": {
        "one_process_rps": half["rps"], "two_processes_rps": two_halves["rps"],
        "two_to_one": round(two_halves["rps"] / half["rps"], 3)}}
    return {"users": users, "one_process_rps": one["rps"], "two_processes_rps": two["rps"], **held,
            "two_to_one": round(two["rps"] / one["rps"], 3), "target_ceiling_wrk": ceiling,
            "nginx_core_share_during_two": round(nginx_share, 2),
            "requests_per_cpu_s": {"one": one["requests_per_cpu_s"], "two": two["requests_per_cpu_s"]}}


# -- load from several machines ------------------------------------------------------------

BENCH_BRIDGE, BENCH_PREFIX = "hb-bench", "198.18.16"
WORKER_USERS = 8  # per worker process, back to back


@contextlib.contextmanager
def load_machines(count: int) -> Iterator[list[str]]:
    """`count` network namespaces on a bridge of their own (198.18.16.0/24, this machine at
    .1): load machines with an address each, for workers that reach nginx and the master only
    over the bridge, as they would from other machines. Removed afterwards."""
    names = [f"hb-load{i}" for i in range(1, count + 1)]

    def ip(*args: str) -> None:
        subprocess.run(["ip", *args], check=True, capture_output=True, timeout=10)

    try:
        ip("link", "add", BENCH_BRIDGE, "type", "bridge")
        ip("addr", "add", f"{BENCH_PREFIX}.1/24", "dev", BENCH_BRIDGE)
        ip("link", "set", BENCH_BRIDGE, "up")
        for i, name in enumerate(names, 1):
            ip("netns", "add", name)
            ip("link", "add", f"hbl{i}", "type", "veth", "peer", "name", "eth0", "netns", name)
            ip("link", "set", f"hbl{i}", "master", BENCH_BRIDGE, "up")
            ip("-n", name, "addr", "add", f"{BENCH_PREFIX}.{10 + i}/24", "dev", "eth0")
            ip("-n", name, "link", "set", "eth0", "up")
            ip("-n", name, "link", "set", "lo", "up")
        yield names
    finally:
        for i, name in enumerate(names, 1):
            subprocess.run(["ip", "netns", "del", name], capture_output=True, timeout=10)
            subprocess.run(["ip", "link", "del", f"hbl{i}"], capture_output=True, timeout=10)
        subprocess.run(["ip", "link", "del", BENCH_BRIDGE], capture_output=True, timeout=10)


def distributed_run(url: str, machines: list[str], cores: float, duration_s: float,
                    directory: Path) -> dict[str, Any]:
    """One load from a worker on each machine, each held to `cores` CPUs; the rate of each
    worker counted from the merged request log (the master's, on this machine)."""
    from harness.config import Topology
    from harness.traffic.plan import Distributed

    with socket.socket() as probe:
        probe.bind((f"{BENCH_PREFIX}.1", 0))
        port = probe.getsockname()[1]
    master = Distributed(expect=len(machines), bind=f"{BENCH_PREFIX}.1", port=port)
    topology = Topology.model_validate({"nodes": [{"id": "nginx", "endpoints": {"http": url}}],
                                        "entry": {"http": url},
                                        "identity": {"http": {"header": "X-Node-Id"}}})
    with contextlib.ExitStack() as stack:
        workers = []
        for i, machine in enumerate(machines):
            prefix = stack.enter_context(cpu_quota(cores, f"w{i}"))
            workers.append(subprocess.Popen(
                [*prefix, "ip", "netns", "exec", machine, sys.executable, "-m", "harness.traffic.worker",
                 "--master", master.address, "--name", machine, "--once", "--idle-timeout", "60"],
                cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        try:
            load = Load(topology, directory, protocol="http", users=WORKER_USERS * len(machines),
                        rate=1e6, duration_s=duration_s, max_requests=10**9, workers=master)
            with load:
                pass
        finally:
            for w in workers:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    w.wait(timeout=30)
                w.kill()
    records = load.records
    span = max(r.end_mono for r in records) - min(r.start_mono for r in records)
    per_worker = {m: sum(r.generator == m for r in records) / span for m in machines}
    return {"rps": round(len(records) / span, 1), "per_worker_rps": {m: round(v, 1) for m, v in per_worker.items()},
            "clock_error_ms": max((c.error_s or 0) * 1000 for c in load.clocks)}


def workers(duration_s: float, cores: float = 0.3) -> dict[str, Any]:
    """The same load from 1, 2 and 3 workers, each on a load machine of its own (a network
    namespace) and held to the same CPU quota, so that this 2-core machine can show how the
    rate grows with workers: each worker's rate, and the efficiency of n workers against n
    times one. Beside it, in the same run against the same nginx, one process held to the same
    quota: wrk, Locust's FastHttpUser, and the harness's users in a local Locust process; the
    harness's users as one worker against those is what shipping records to a master costs."""
    with tempfile.TemporaryDirectory() as tmp, load_machines(3) as machines:
        proc, url = nginx_target(Path(tmp), host=f"{BENCH_PREFIX}.1")
        try:
            runs = {n: distributed_run(url, machines[:n], cores, duration_s, Path(tmp)) for n in (1, 2, 3)}
            with cpu_quota(cores, "wrk") as prefix:
                out = subprocess.run([*prefix, "wrk", "-t1", f"-c{WORKER_USERS}", f"-d{round(duration_s)}s", url + WHOAMI],
                                     capture_output=True, text=True, timeout=duration_s + 30).stdout
            wrk_rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
            fast = locust_run(["-f", "bench/fast_user.py", "--host", url], WORKER_USERS, duration_s, cores)["rps"]
            local = locust_run(harness_users(url), WORKER_USERS, duration_s, cores)["rps"]
        finally:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=10)
    one = runs[1]["rps"]
    return {"cores_per_process": cores, "users_per_worker": WORKER_USERS, "duration_s": duration_s,
            "by_workers": {n: {**r, "efficiency": round(r["rps"] / (n * one), 3)} for n, r in runs.items()},
            "per_process": {"wrk": round(wrk_rps, 1), "locust_fasthttp": fast, "harness_users_local": local,
                            "harness_users_one_worker": one,
                            "worker_to_local": round(one / local, 3)}}


# -- failover resolution ----------------------------------------------------------------------

def failover_resolution(kills: int) -> dict[str, Any]:
    reported, server, differences = [], [], []
    with LocalCluster(3, access_logs=True) as cluster, tempfile.TemporaryDirectory() as tmp:
        nemesis = FaultInjector(cluster)
        for k in range(kills):
            cluster.reset()
            with Load(cluster.topology, Path(tmp), users=4, rate=50.0, duration_s=3.0) as load:
                time.sleep(1.0)
                with nemesis.inject(Fault.of(FaultKind.KILL, "node3")) as event:
                    time.sleep(0.5)
            entry = [r for r in load.records if r.endpoint == "entry"]
            offset = statistics.median(r.start_wall - r.start_mono for r in entry)
            harness_gap = checks.longest_gap(entry, event.start_mono, event.end_mono)
            served = [t for n in cluster.node_ids for t in cluster.served_times(n)]
            server_gap = checks.largest_gap(served, event.start_mono + offset, event.end_mono + offset)
            reported.append(harness_gap)
            server.append(server_gap)
            differences.append(harness_gap - server_gap)
            say(f"kill {k + 1}/{kills}: harness gap {harness_gap * 1000:.1f} ms, "
                f"server-side gap {server_gap * 1000:.1f} ms")
    return {"kills": kills, "harness_gap_s": spread(reported), "server_gap_s": spread(server),
            "difference_s": spread(differences),
            "max_abs_difference_ms": round(max(abs(d) for d in differences) * 1000, 1)}


# -- Toxiproxy's cost -------------------------------------------------------------------------

def sequential_p50_ms(url: str, n: int = 300) -> float:
    times = []
    with requests.Session() as s:
        for _ in range(n):
            start = time.perf_counter()
            s.get(url, timeout=2)
            times.append((time.perf_counter() - start) * 1000)
    return round(statistics.median(times), 3)


def toxiproxy_overhead(duration_s: float) -> dict[str, Any]:
    with LocalCluster(1) as cluster:
        direct = f"http://{cluster.layout.node(1)}:{NODE_PORTS['http']}{WHOAMI}"
        proxied = cluster.topology.node("node1").endpoints.http + WHOAMI
        result = {"direct": {**wrk(direct, 8, 1, duration_s), "sequential_p50_ms": sequential_p50_ms(direct)},
                  "through_toxiproxy": {**wrk(proxied, 8, 1, duration_s),
                                        "sequential_p50_ms": sequential_p50_ms(proxied)}}
    d, p = result["direct"], result["through_toxiproxy"]
    result["throughput_ratio"] = round(p["rps"] / d["rps"], 3)
    result["added_sequential_latency_ms"] = round(p["sequential_p50_ms"] - d["sequential_p50_ms"], 3)
    return result


# -- a soak's memory and disk ------------------------------------------------------------------

def rss_mb(pid: int) -> float:
    """Resident memory of one process (0 once it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def drivers_of(pid: int) -> list[int]:
    """The soak's Locust driver processes (its children running harness.traffic.drive)."""
    out = subprocess.run(["pgrep", "-P", str(pid), "-f", "harness.traffic.drive"],
                         capture_output=True, text=True).stdout
    return [int(x) for x in out.split()]


def soak_memory(minutes: float, rate: float) -> dict[str, Any]:
    """`harness soak` on the local reference cluster: resident memory of the harness (the
    soak process, and its load generators) sampled every 5 s; growth is the largest sample
    after the first minute (warm: imports done, buffers full) less the sample at that minute."""
    report = REPORTS / "soak"
    shutil.rmtree(report, ignore_errors=True)
    report.mkdir(parents=True)
    progress = report / "soak-progress.log"
    with progress.open("w") as err:
        proc = subprocess.Popen([sys.executable, "-m", "harness.cli", "soak", "--backend", "local",
                                 "--minutes", str(minutes), "--total-rate", str(rate), "--seed", "1",
                                 "--keep-going", "-o", str(report)],
                                cwd=ROOT, stdout=subprocess.DEVNULL, stderr=err)
    samples: list[tuple[float, float, float]] = []  # (seconds, soak MB, drivers MB)
    started = time.monotonic()
    while proc.poll() is None:
        drivers = drivers_of(proc.pid)
        if drivers:
            samples.append((time.monotonic() - started, rss_mb(proc.pid),
                            sum(rss_mb(d) for d in drivers)))
        time.sleep(5)
    summary_file = report / "soak-summary.json"
    if not summary_file.exists():
        raise SystemExit(f"bench: the soak failed: {progress.read_text()[-800:]}")
    summary = json.loads(summary_file.read_text())
    warm_at = samples[0][0] + 60
    warm = next(s for s in samples if s[0] >= warm_at)
    later = [s for s in samples if s[0] >= warm_at]
    plot = REPORTS / "soak-memory.png"
    _memory_plot(samples, plot)
    return {"minutes": minutes, "rate_asked": rate, "verdict": summary["verdict"],
            "explanation": summary["explanation"], "report": str(report.relative_to(ROOT)),
            "windows": summary["windows"], "figures": summary["figures"],
            "soak_rss_mb": {"at_1_min": round(warm[1], 1), "max_after": round(max(s[1] for s in later), 1),
                            "growth": round(max(s[1] for s in later) - warm[1], 1)},
            "drivers_rss_mb": {"at_1_min": round(warm[2], 1), "max_after": round(max(s[2] for s in later), 1),
                               "growth": round(max(s[2] for s in later) - warm[2], 1)},
            "samples": len(samples), "plot": str(plot.relative_to(ROOT))}


def _memory_plot(samples: list[tuple[float, float, float]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 3), dpi=100)
    ax.plot([s[0] / 60 for s in samples], [s[1] for s in samples], label="harness soak process")
    ax.plot([s[0] / 60 for s in samples], [s[2] for s in samples], label="its load generators")
    ax.set_xlabel("minutes")
    ax.set_ylabel("resident memory (MB)")
    ax.set_ylim(bottom=0)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    path.parent.mkdir(exist_ok=True)
    fig.savefig(path)
    plt.close(fig)


# -- the table --------------------------------------------------------------------------------

def table(r: dict[str, Any]) -> str:
    rows = ["| measure | value |", "|---|---|"]
    for backend, s in r.get("start", {}).items():
        rows.append(f"| {backend}: 3-node start, cold | {s['cold_s']:.2f} s |")
        rows.append(f"| {backend}: 3-node start, warm (mean of {s['warm_s']['n']}) | {s['warm_s']['mean']:.2f} s |")
        rows.append(f"| {backend}: add a node | {s['add_node_s']['mean']:.2f} s |")
    for backend, s in r.get("scenarios", {}).items():
        rows.append(f"| {backend}: `pytest scenarios/` | {s['wall_s']:.0f} s ({s['summary']}) |")
    if "load_generation" in r:
        g = r["load_generation"]
        rows.append(f"| wrk, {g['connections']} connections, one node | {g['wrk']['rps']:.0f} req/s |")
        rows.append(f"| Locust FastHttpUser, same | {g['locust_fasthttp_rps']:.0f} req/s "
                    f"(x{g['fasthttp_to_wrk']} of wrk) |")
        rows.append(f"| Locust with the harness's users, same | {g['locust_harness_users_rps']:.0f} req/s "
                    f"(x{g['harness_users_to_wrk']} of wrk) |")
        if "https" in g:
            h = g["https"]
            rows.append(f"| wrk over HTTPS, {g['connections']} connections, one node | {h['wrk']['rps']:.0f} req/s |")
            rows.append(f"| Locust with the harness's users over HTTPS, same | {h['locust_harness_users_rps']:.0f} "
                        f"req/s (x{h['harness_users_to_wrk']} of wrk) |")
        rows.append(f"| the node's ceiling (wrk, 32 connections) | {g['node_ceiling_wrk_32c']['rps']:.0f} req/s |")
    if "processes" in r:
        p = r["processes"]
        rows.append(f"| the harness's users, {p['users']} users against nginx: 1 process / 2 processes | "
                    f"{p['one_process_rps']:.0f} / {p['two_processes_rps']:.0f} req/s (x{p['two_to_one']}; "
                    f"nginx's own ceiling by wrk {p['target_ceiling_wrk']['rps']:.0f} req/s, nginx used "
                    f"{p['nginx_core_share_during_two']:.0%} of a core) |")
        if "half_core_each" in p:
            h = p["half_core_each"]
            rows.append(f"| the same, each Locust process held to half a core (a CPU quota), so the machine has "
                        f"room for nginx and the kernel: 1 process / 2 processes | {h['one_process_rps']:.0f} / "
                        f"{h['two_processes_rps']:.0f} req/s (x{h['two_to_one']}) |")
        cpu = p["requests_per_cpu_s"]
        rows.append(f"| the same: requests per generator CPU-second, 1 process / 2 processes | "
                    f"{cpu['one']:.0f} / {cpu['two']:.0f} |")
    if "workers" in r:
        w = r["workers"]
        q = f"held to {w['cores_per_process']:g} of a core each"
        for n, run in w["by_workers"].items():
            rows.append(f"| load from {n} worker(s), {w['users_per_worker']} users each, {q}, against nginx | "
                        f"{run['rps']:.0f} req/s, per worker {', '.join(f'{v:.0f}' for v in run['per_worker_rps'].values())} "
                        f"(efficiency x{run['efficiency']} of {n} x one; clocks within {run['clock_error_ms']:.2f} ms) |")
        pp = w["per_process"]
        rows.append(f"| one process {q}, {w['users_per_worker']} connections/users: wrk / FastHttpUser / the "
                    f"harness's users locally / as one worker | {pp['wrk']:.0f} / {pp['locust_fasthttp']:.0f} / "
                    f"{pp['harness_users_local']:.0f} / {pp['harness_users_one_worker']:.0f} req/s (worker x"
                    f"{pp['worker_to_local']} of local) |")
    if "failover_resolution" in r:
        f = r["failover_resolution"]
        rows.append(f"| failover gap, harness vs server log, {f['kills']} kills | difference mean "
                    f"{f['difference_s']['mean'] * 1000:.1f} ms, stdev {f['difference_s']['stdev'] * 1000:.1f} ms, "
                    f"max {f['max_abs_difference_ms']:.1f} ms (gap {f['harness_gap_s']['mean'] * 1000:.0f} ms) |")
    if "soak" in r:
        k = r["soak"]
        f = k["figures"]
        rows.append(f"| soak, {k['minutes']:g} min on the local cluster at {f['requests_per_s']:.0f} req/s "
                    f"({f['requests']} requests, {k['verdict']}) | harness process {k['soak_rss_mb']['at_1_min']:.0f} MB "
                    f"at 1 min, growth {k['soak_rss_mb']['growth']:+.1f} MB; load generators "
                    f"{k['drivers_rss_mb']['at_1_min']:.0f} MB, growth {k['drivers_rss_mb']['growth']:+.1f} MB; "
                    f"request log on disk {f['log_bytes_on_disk'] / 1e6:.1f} MB ([plot]({Path(k['plot']).name})) |")
    if "toxiproxy" in r:
        t = r["toxiproxy"]
        rows.append(f"| Toxiproxy hop: throughput | x{t['throughput_ratio']} ({t['direct']['rps']:.0f} -> "
                    f"{t['through_toxiproxy']['rps']:.0f} req/s) |")
        rows.append(f"| Toxiproxy hop: added latency (sequential p50) | {t['added_sequential_latency_ms']:.2f} ms |")
    return "\n".join(rows)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sections", default=",".join(SECTIONS),
                        help="which to measure, comma-separated; the others are kept from an earlier "
                             "reports/bench.json (default: all of %(default)s)")
    parser.add_argument("--backends", default="local,docker", help="comma-separated (default %(default)s)")
    parser.add_argument("--kills", type=int, default=8, help="kills for the failover resolution (default 8)")
    parser.add_argument("--seconds", type=int, default=5, help="duration of each throughput run (default 5)")
    parser.add_argument("--cold-base", action="store_true", help="docker cold start rebuilds the Debian base too")
    parser.add_argument("--soak-minutes", type=float, default=30.0, help="length of the soak (default 30)")
    parser.add_argument("--soak-rate", type=float, default=500.0,
                        help="HTTP and HTTPS requests per second during the soak (default 500)")
    args = parser.parse_args()
    sections = [x for x in args.sections.split(",") if x]
    if unknown := set(sections) - set(SECTIONS):
        parser.error(f"unknown section(s) {', '.join(sorted(unknown))}; choose from {', '.join(SECTIONS)}")
    if shutil.which("wrk") is None:
        parser.error("wrk is not installed; run scripts/setup.sh")
    backends = [b for b in args.backends.split(",") if b]
    previous = REPORTS / "bench.json"
    result: dict[str, Any] = json.loads(previous.read_text()) if previous.exists() else {}
    result["machine"] = {"cores": os.cpu_count()}
    if "start" in sections:
        result["start"] = {}
        for backend in backends:
            say(f"{backend}: cold start")
            cold = cold_start(backend, args.cold_base)
            say(f"{backend}: warm starts and add_node")
            result["start"][backend] = {"cold_s": round(cold, 2), **warm_starts(backend)}
    if "scenarios" in sections:
        result["scenarios"] = {}
        for backend in backends:
            say(f"{backend}: pytest scenarios/")
            result["scenarios"][backend] = scenario_suite(backend)
    if "load" in sections:
        say("load generation against one node")
        result["load_generation"] = load_generation(args.seconds)
    if "processes" in sections:
        say("load generation over one and two processes")
        result["processes"] = processes(args.seconds)
    if "workers" in sections:
        say("load from 1, 2 and 3 workers on load machines of their own")
        result["workers"] = workers(args.seconds)
    if "failover" in sections:
        say("failover resolution")
        result["failover_resolution"] = failover_resolution(args.kills)
    if "toxiproxy" in sections:
        say("Toxiproxy overhead")
        result["toxiproxy"] = toxiproxy_overhead(args.seconds)
    if "soak" in sections:
        say(f"a {args.soak_minutes:g}-minute soak: memory and disk")
        result["soak"] = soak_memory(args.soak_minutes, args.soak_rate)
    REPORTS.mkdir(exist_ok=True)
    (REPORTS / "bench.json").write_text(json.dumps(result, indent=2))
    text = table(result)
    written = REPORTS / "bench.md"
    # what follows the table (notes and the suite's durations, written by hand) is kept
    notes = written.read_text().partition("\n## ")[2] if written.exists() else ""
    written.write_text(text + "\n" + (f"\n## {notes}" if notes else ""))
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
