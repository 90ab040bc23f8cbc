"""Nothing outlives a run: `harness down` stops everything, and a SIGKILLed run's processes
are swept by the next run."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness.cluster.procs import recorded_alive, sweep_stale
from harness.runstate import LABEL_VAR

pytestmark = pytest.mark.cluster
HARNESS = [sys.executable, "-m", "harness.cli"]


def start_up(state: Path, endpoints: Path, backend: str = "local") -> subprocess.Popen:
    env = {**os.environ, "HARNESS_STATE_DIR": str(state)}
    env.pop(LABEL_VAR, None)
    up = subprocess.Popen([*HARNESS, "up", "--backend", backend, "--nodes", "2",
                           "--endpoints-file", str(endpoints)], env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120  # the first docker run builds its images
    while not endpoints.exists():
        assert up.poll() is None, up.stderr.read()
        assert time.monotonic() < deadline, "harness up did not come up within 120 s"
        time.sleep(0.05)
    return up


def recorded(state: Path) -> tuple[Path, list[str]]:
    """The run's pid file, and a copy of it to check against after it is swept away."""
    pid_file = next(state.glob("slot-*/pids"))
    return pid_file, pid_file.read_text().splitlines()


def wait_gone(lines: list[str], tmp: Path, timeout_s: float = 10) -> list[int]:
    copy = tmp / "pids.copy"
    copy.write_text("\n".join(lines) + "\n")
    deadline = time.monotonic() + timeout_s
    while (left := recorded_alive(copy)) and time.monotonic() < deadline:
        time.sleep(0.05)
    return left


def test_a_sigkilled_run_is_swept_by_the_next(tmp_path):
    up = start_up(tmp_path, tmp_path / "endpoints.json")
    pid_file, lines = recorded(tmp_path)
    up.send_signal(signal.SIGKILL)
    up.wait()
    try:
        assert len(recorded_alive(pid_file)) == len(lines) >= 6, "the crashed run's cluster should still run"
    finally:
        swept = sweep_stale(tmp_path)
    assert swept == len(lines)
    assert wait_gone(lines, tmp_path) == []
    assert [p.name for p in pid_file.parent.iterdir()] == ["lock"], "its files should be gone too"


def test_harness_down_leaves_nothing_behind(tmp_path):
    endpoints = tmp_path / "endpoints.json"
    up = start_up(tmp_path, endpoints)
    printed = json.loads(endpoints.read_text())
    assert set(printed["nodes"]) == {"node1", "node2"} and printed["entry"]["https"]
    _, lines = recorded(tmp_path)
    env = {**os.environ, "HARNESS_STATE_DIR": str(tmp_path)}
    down = subprocess.run([*HARNESS, "down"], env=env, capture_output=True, text=True, timeout=60)
    assert down.returncode == 0, down.stderr
    assert up.wait(timeout=20) == 0
    assert wait_gone(lines, tmp_path) == []
    assert not endpoints.exists()
    # only slot locks: one per slot it tried (a parallel run may have held the first)
    assert {p.name for p in tmp_path.glob("slot-*/*")} == {"lock"}, "a finished run keeps no files"


def test_a_run_directory_is_kept_only_when_asked(tmp_path, monkeypatch):
    from harness.cluster.local import LocalCluster
    from harness.runstate import KEEP_VAR

    monkeypatch.setenv(KEEP_VAR, "1")
    with LocalCluster(2) as cluster:
        directory = cluster.directory
    kept = {p.name for p in directory.iterdir()}
    assert {"haproxy.cfg", "node1.log", "toxiproxy.log"} <= kept
    assert "Accepted client" not in (directory / "toxiproxy.log").read_text(), \
        "Toxiproxy logs warnings only, not every connection"


def docker_objects(state: Path) -> tuple[list, list]:
    """The containers and networks the runs under this state root made."""
    import docker

    from harness.cluster.docker import ROOT_LABEL

    client = docker.from_env()
    mine = {"label": f"{ROOT_LABEL}={state}"}
    return client.containers.list(all=True, filters=mine), client.networks.list(filters=mine)


@pytest.mark.docker
def test_a_sigkilled_docker_run_is_swept(tmp_path):
    from harness.cluster.docker import sweep_stale_containers

    up = start_up(tmp_path, tmp_path / "endpoints.json", backend="docker")
    up.send_signal(signal.SIGKILL)
    up.wait()
    containers, networks = docker_objects(tmp_path)
    # 2 nodes (a sandbox and a server each), HAProxy, Toxiproxy, two Redis; one network
    assert (len(containers), len(networks)) == (8, 1), "the crashed run's cluster should still exist"
    assert sweep_stale_containers(root=tmp_path) == 9
    assert docker_objects(tmp_path) == ([], [])


@pytest.mark.docker
def test_harness_down_leaves_no_container_or_network(tmp_path):
    endpoints = tmp_path / "endpoints.json"
    up = start_up(tmp_path, endpoints, backend="docker")
    assert len(docker_objects(tmp_path)[0]) == 8
    env = {**os.environ, "HARNESS_STATE_DIR": str(tmp_path)}
    down = subprocess.run([*HARNESS, "down"], env=env, capture_output=True, text=True, timeout=60)
    assert down.returncode == 0, down.stderr
    assert up.wait(timeout=30) == 0
    assert docker_objects(tmp_path) == ([], [])
