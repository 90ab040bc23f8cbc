"""Load from other machines (Locust's distributed mode, the harness the master).

On hosts of their own: the zoo's hosts-ssh member has two load machines (network namespaces
with an OpenSSH server each, reached only over SSH), one of them in a time namespace whose
monotonic clock is an hour ahead of this machine's. With `--load-workers 2` the harness
starts a worker on each over SSH; the reference nodes' balance and failover pass with their
load, a balancer that never retries is still caught, and the merged request log holds both
workers' requests on this machine's clock (a merge that trusted raw clocks would put the
second worker's an hour off, and the failover check would see nothing of them around the
kill). On loopback: a worker of another harness version is refused in one sentence, and
workers that never come end the run in one sentence naming how many came.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from test_hosts import REMOTE, ROOT, TOPOLOGY, member_script

pytestmark = pytest.mark.cluster
WORKERS = ("198.18.14.21", "198.18.14.22")
PLACED_WITHIN_S = 0.02  # the failover checks' resolution (checks.CLOCK_RESOLUTION_S)


@pytest.fixture(scope="module")
def member(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """hosts-ssh, put in the configuration a test asks for; down after the module."""
    log = tmp_path_factory.mktemp("hosts-ssh") / "member.log"
    yield lambda *args: member_script(log, *args)
    member_script(log, "down")


def scenarios(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pytest", "scenarios/", "--topology", str(TOPOLOGY), REMOTE,
         "--load-workers", "2", "-p", "no:cacheprovider", "-q", f"--basetemp={tmp_path / 'runs'}",
         f"--alluredir={tmp_path / 'results'}", *args],
        cwd=ROOT, capture_output=True, text=True, timeout=600, stdin=subprocess.DEVNULL)


def evidence(tmp_path: Path, scenario: str) -> tuple[list[dict], list[dict]]:
    """A scenario's request log and fault timeline, from its evidence folder."""
    [folder] = [p for p in (tmp_path / "runs").glob(f"{scenario}*") if not p.name.endswith("current")]
    requests = [json.loads(line) for line in (folder / "requests.jsonl").read_text().splitlines()]
    faults = (folder / "faults.jsonl")
    return requests, [json.loads(line) for line in faults.read_text().splitlines()] if faults.exists() else []


@pytest.mark.xdist_group("zoo-hosts-ssh")
def test_balance_and_failover_pass_with_load_from_two_machines_one_an_hour_ahead(member, tmp_path):
    member("up", "sound")
    done = scenarios(tmp_path, "-m", "lb or failover", "-k", "balance or http-kill")
    assert done.returncode == 0, done.stdout[-3000:]
    assert "3 passed" in done.stdout
    mono_minus_wall = time.monotonic() - time.time()  # this machine's; the hosts share its wall clock
    requests, [kill] = evidence(tmp_path, "test_requests_fail_over_when_a")
    assert {r["generator"] for r in requests} == set(WORKERS)
    for r in requests:  # on this machine's monotonic clock, whichever worker sent it
        assert abs(r["start_mono"] - r["start_wall"] - mono_minus_wall) < PLACED_WITHIN_S, r
    fault_at, healed_at = kill["applied_mono"], kill["healing_mono"]  # while it was in force
    for worker in WORKERS:
        mine = [r for r in requests if r["generator"] == worker]
        assert any(r["end_mono"] < fault_at for r in mine), f"{worker}: nothing before the kill"
        assert any(fault_at < r["start_mono"] < healed_at for r in mine), f"{worker}: nothing during it"
        late = [r for r in mine if r["ok"] and r["node"] == kill["node"]
                and fault_at + PLACED_WITHIN_S < r["start_mono"] < healed_at]
        assert not late, f"{worker}: answered by the killed {kill['node']} after the kill: {late[:2]}"


@pytest.mark.xdist_group("zoo-hosts-ssh")
def test_a_balancer_that_never_retries_is_caught_with_load_from_other_machines(member, tmp_path):
    member("up", "no_redispatch")
    done = scenarios(tmp_path, "-m", "failover", "-k", "http-kill")
    assert done.returncode == 1 and "C2 failover: CONTRACT VIOLATED" in done.stdout, done.stdout[-3000:]
    requests, _ = evidence(tmp_path, "test_requests_fail_over_when_a")
    assert {r["generator"] for r in requests} == set(WORKERS)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_worker_of_another_harness_version_is_refused_in_one_sentence(tmp_path):
    port = free_port()
    other = ("import harness.version; harness.version.VERSION = '9.9.9'; import runpy; "
             "runpy.run_module('harness.traffic.worker', run_name='__main__')")
    worker = subprocess.Popen([sys.executable, "-c", other, "--master", f"127.0.0.1:{port}",
                               "--name", "old-machine", "--idle-timeout", "60"],
                              cwd=ROOT, stderr=subprocess.PIPE, text=True)
    try:
        done = subprocess.run(
            [sys.executable, "-m", "pytest", "scenarios/", "--backend", "local", "-m", "lb",
             "--load-workers", "1", "--load-master", f"127.0.0.1:{port}", "-p", "no:cacheprovider",
             "-q", f"--basetemp={tmp_path}"], cwd=ROOT, capture_output=True, text=True, timeout=300)
        said = worker.communicate(timeout=30)[1]
    finally:
        worker.kill()
    assert done.returncode == 2, done.stdout[-2000:]
    assert "load worker old-machine runs harness 9.9.9, the master harness" in done.stdout
    assert worker.returncode == 2 and "refused" in said


def test_workers_that_never_come_end_the_run_in_one_sentence(tmp_path):
    port = free_port()
    done = subprocess.run(
        [sys.executable, "-m", "harness.cli", "scalability", "--backend", "local", "--nodes", "2",
         "--load-workers", "2", "--load-master", f"127.0.0.1:{port}", "-o", str(tmp_path)],
        cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 2, done.stderr[-2000:]
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith(f"harness: only 0 of 2 load workers came to the master at 127.0.0.1:{port}"), last
    assert "Traceback" not in done.stderr
