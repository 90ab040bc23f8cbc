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

from harness.cluster.procs import LABEL_VAR, recorded_alive, sweep_stale

pytestmark = pytest.mark.cluster
HARNESS = [sys.executable, "-m", "harness.cli"]


def start_up(state: Path, endpoints: Path) -> subprocess.Popen:
    env = {**os.environ, "HARNESS_STATE_DIR": str(state)}
    env.pop(LABEL_VAR, None)
    up = subprocess.Popen([*HARNESS, "up", "--backend", "local", "--nodes", "2",
                           "--endpoints-file", str(endpoints)], env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 30
    while not endpoints.exists():
        assert up.poll() is None, up.stderr.read()
        assert time.monotonic() < deadline, "harness up did not come up within 30 s"
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
