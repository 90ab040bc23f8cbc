"""`locust -f loadtests/` against a real reference cluster: per-node accounting that agrees with
Locust's own counts, distributed mode (a master and two workers), the step shape, and bad input.
"""

import csv
import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from harness.cluster.local import LocalCluster

pytestmark = pytest.mark.cluster
ROOT = Path(__file__).resolve().parents[1]
LOCUST = [sys.executable, "-m", "locust"]


@pytest.fixture(scope="module")
def endpoints(tmp_path_factory):
    with LocalCluster(3) as cluster:
        path = tmp_path_factory.mktemp("loadtests") / "endpoints.json"
        path.write_text(json.dumps({"topology": json.loads(cluster.topology.model_dump_json())}))
        yield path


def locust(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([*LOCUST, *args], capture_output=True, text=True, cwd=ROOT, timeout=timeout)


def locust_total(stats_json: Path) -> int:
    """Locust's own request count at the end (its CSV is rewritten each second, so may lag)."""
    return sum(entry["num_requests"] for entry in json.loads(stats_json.read_text()))


def node_rows(nodes_csv: Path) -> list[dict[str, str]]:
    return list(csv.DictReader(nodes_csv.open()))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_headless_run_counts_every_request_per_node(endpoints, tmp_path):
    done = locust("-f", "loadtests/", "--headless", "-u", "8", "-r", "8", "-t", "3s",
                  "--endpoints-file", str(endpoints), "--csv", str(tmp_path / "cap"),
                  "--html", str(tmp_path / "cap.html"), "--json-file", str(tmp_path / "cap"))
    assert done.returncode == 0, done.stderr[-2000:]
    rows = node_rows(tmp_path / "cap_nodes.csv")
    assert sum(int(r["requests"]) for r in rows) == locust_total(tmp_path / "cap.json")
    assert {r["node"] for r in rows if r["protocol"] == "HTTP"} == {"node1", "node2", "node3"}
    assert {r["protocol"] for r in rows} == {"HTTP", "HTTPS", "FTP", "SMTP"}
    assert "Requests per node" in done.stdout
    assert (tmp_path / "cap.html").stat().st_size > 0


def test_host_alone_drives_http_through_that_entry(endpoints, tmp_path):
    entry = json.loads(endpoints.read_text())["topology"]["entry"]["http"]
    done = locust("-f", "loadtests/", "--headless", "-u", "3", "-r", "3", "-t", "2s", "--host", entry,
                  "--endpoints-file", str(tmp_path / "none.json"), "--nodes-csv", str(tmp_path / "nodes.csv"))
    assert done.returncode == 0, done.stderr[-2000:]
    rows = node_rows(tmp_path / "nodes.csv")
    assert {r["protocol"] for r in rows} == {"HTTP"}
    assert {r["node"] for r in rows} == {"node1", "node2", "node3"}


def test_master_and_two_workers(endpoints, tmp_path):
    port = free_port()
    master = subprocess.Popen(
        [*LOCUST, "-f", "loadtests/", "--master", "--headless", "--expect-workers", "2",
         "--master-bind-host", "127.0.0.1", "--master-bind-port", str(port),
         "-u", "6", "-r", "6", "-t", "4s", "--endpoints-file", str(endpoints),
         "--csv", str(tmp_path / "dist"), "--json-file", str(tmp_path / "dist")],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    # Workers get the cluster from the master's options (no --endpoints-file of their own).
    workers = [subprocess.Popen([*LOCUST, "-f", "loadtests/", "--worker", "--master-host", "127.0.0.1",
                                 "--master-port", str(port)], cwd=ROOT,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
               for _ in range(2)]
    try:
        out, err = master.communicate(timeout=60)
        for w in workers:
            w.wait(timeout=30)
    finally:
        for p in (master, *workers):
            p.kill()
    assert master.returncode == 0, err[-2000:]
    assert all(w.returncode == 0 for w in workers), [w.stderr.read()[-500:] for w in workers]
    rows = node_rows(tmp_path / "dist_nodes.csv")
    total = locust_total(tmp_path / "dist.json")
    assert total > 0
    assert sum(int(r["requests"]) for r in rows) == total
    assert {r["node"] for r in rows if r["protocol"] == "HTTP"} == {"node1", "node2", "node3"}


def step_run(endpoints: Path, tmp_path: Path, *options: str) -> dict:
    """An HTTP-only saturation search, two users a step of 1.5 s; returns its step report."""
    report = tmp_path / "steps.json"
    done = locust("-f", "loadtests/,loadtests/_step_shape.py", "--headless", "--endpoints-file", str(endpoints),
                  "--https-weight", "0", "--ftp-weight", "0", "--smtp-weight", "0", "--step-users", "2",
                  "--step-seconds", "1.5", "--step-report", str(report), *options)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(report.read_text())


def test_step_shape_raises_users_and_says_the_cluster_was_not_saturated(endpoints, tmp_path):
    summary = step_run(endpoints, tmp_path, "--max-steps", "2", "--step-rate", "5")
    assert [s["users"] for s in summary["steps"]] == [2, 4]
    assert [s["offered_rps"] for s in summary["steps"]] == [10, 20]
    assert summary["limit"] == "unsaturated" and not summary["saturated"]
    assert summary["rps"] == max(s["served_rps"] for s in summary["steps"]) > 0


def test_the_step_shape_finds_the_reference_clusters_knee(endpoints, tmp_path):
    # 3 nodes x 8 threads of a 100 ms service: 240 req/s; steps of 60 req/s
    summary = step_run(endpoints, tmp_path, "--service", "harness.demo:slow?delay=100",
                       "--step-users", "15", "--step-rate", "4", "--step-seconds", "2")
    assert summary["saturated"] and summary["knee"] >= 3, summary["says"]
    assert 180 < summary["rps"] < 300 and "served" in summary["steps"][-1]["past"]


@pytest.mark.parametrize("args, message", [
    (["--endpoints-file", "/nonexistent/endpoints.json"], "no cluster to load"),
    (["--topology", "/nonexistent/topology.yaml"], "/nonexistent/topology.yaml"),
    (["--http-weight", "-1"], "--http-weight must be 0 or more"),
    (["--host", "ftp://127.0.0.1:21"], "--host must be an http:// or https:// URL"),
])
def test_bad_input_is_one_sentence_and_exit_2(endpoints, args, message):
    if "--endpoints-file" not in args and "--topology" not in args:
        args = [*args, "--endpoints-file", str(endpoints)]
    done = locust("-f", "loadtests/", "--headless", "-u", "1", "-t", "1s", *args)
    assert done.returncode == 2
    harness_lines = [line for line in done.stderr.splitlines() if line.startswith("harness: ")]
    assert len(harness_lines) == 1 and message in harness_lines[0], done.stderr[-1000:]
