"""Safe on a cluster people depend on, shown on the reference cluster as an external one (a
`harness up` whose nodes "someone else" can kill): a node that fails beside the soak's own
fault stops the soak (the healthy-nodes condition), every fault healed, and one that fails
during a scenario's fault stops the run by the topology's own stop condition; a cluster that is not
healthy before a scenario is never faulted, and the run ends aborted (exit 5); a soak plan
past the blast radius is refused in one sentence. The kill switch during a partition over SSH
is tests/test_hosts.py's."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
import yaml

from harness.history.timeline import FaultKind
from harness.soak.plan import SoakPlan
from test_mutants import reference_as_external

pytestmark = pytest.mark.cluster
ROOT = Path(__file__).resolve().parent.parent
HARNESS = [sys.executable, "-m", "harness.cli"]


def node(topology: Path, action: str, node_id: str) -> None:
    """What someone else does to a node: through the `harness up` that holds the cluster."""
    socket = re.search(r"--socket (\S+)", topology.read_text()).group(1)
    subprocess.run([*HARNESS, "node", action, node_id, "--socket", socket], check=True, timeout=60,
                   capture_output=True)


def answers(topology: Path) -> dict[str, bool]:
    """Does each node answer on its own endpoint (not paused, not killed)?"""
    data = yaml.safe_load(topology.read_text())
    out = {}
    for n in data["nodes"]:
        try:
            out[n["id"]] = requests.get(n["endpoints"]["http"] + "/invoke/harness.demo:whoami", timeout=2).ok
        except requests.RequestException:
            out[n["id"]] = False
    return out


def with_safety(topology: Path, safety: dict) -> Path:
    """The topology with a team's `safety:` section, written beside the test's files."""
    data = yaml.safe_load(topology.read_text())
    data["safety"] = safety
    guarded = topology.parent / "guarded.yaml"
    guarded.write_text(yaml.safe_dump(data))
    return guarded


def someone_else_kills(topology: Path, node_id: str, run: subprocess.Popen) -> tuple[int, float]:
    """Kill `node_id` as someone else would while `run` goes on: the run's exit code, and how
    long after the kill it ended."""
    node(topology, "kill", node_id)
    killed = time.monotonic()
    code = run.wait(timeout=120)
    return code, time.monotonic() - killed


def test_a_node_failed_beside_the_soaks_own_fault_stops_it_and_heals_everything(tmp_path):
    plan = SoakPlan(minutes=2, seed=3, nemesis=(FaultKind.PAUSE,), mean_fault_seconds=20)
    first = plan.schedule(["node1", "node2", "node3"])[0]
    other = next(n for n in ("node1", "node2", "node3") if n != first.node)
    with reference_as_external(tmp_path) as topology:
        log = (tmp_path / "soak.log").open("w")
        soak = subprocess.Popen(
            [*HARNESS, "soak", "--topology", str(topology), "--minutes", "2", "--seed", "3",
             "--nemesis", "pause", "--mean-fault-seconds", "20", "--min-healthy-nodes", "2",
             "-o", str(tmp_path / "soak")], cwd=ROOT, stdout=log, stderr=log, stdin=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 60
            while "soak: seed" not in (tmp_path / "soak.log").read_text() and time.monotonic() < deadline:
                time.sleep(0.1)
            time.sleep(first.at + 3)  # the soak's own pause of first.node is in force
            code, after = someone_else_kills(topology, other, soak)
        finally:
            soak.kill()
        said = (tmp_path / "soak.log").read_text()
        assert code == 5, said[-2000:]
        assert f"fewer than --min-healthy-nodes 2: {other} did not answer" in said, said[-2000:]
        assert after < 15, f"stopped {after:.1f} s after the kill"
        health = answers(topology)
        assert health[first.node], f"the soak's paused {first.node} was left paused: {health}"
        node(topology, "restart", other)


def test_a_cluster_not_healthy_before_a_scenario_is_never_faulted_and_the_run_aborts(tmp_path):
    """The operators' own health check (safety.health) says the cluster is in maintenance:
    nothing is faulted, and the run ends aborted once it has not recovered within the bound."""
    flag = tmp_path / "maintenance"
    with reference_as_external(tmp_path) as topology:
        guarded = with_safety(topology, {"health": {"command": f"test ! -e {flag}"}})
        flag.touch()  # someone else's maintenance, before the run
        done = subprocess.run([*HARNESS, "run", "--topology", str(guarded), "-m", "failover",
                               "-k", "http-kill", "--victim", "node1", "--no-html",
                               "--alluredir", str(tmp_path / "results")],
                              cwd=tmp_path, capture_output=True, text=True, timeout=300)
        health = answers(topology)
    said = done.stdout + done.stderr
    assert done.returncode == 5, said[-2000:]
    assert "the cluster did not recover" in said and "its health check failed" in said, said[-2000:]
    assert all(health.values()), f"a node was faulted: {health}"
    results = list((tmp_path / "results").glob("*-result.json"))
    assert not any("fault injected" in r.read_text() for r in results)


def test_a_node_failed_during_a_scenarios_fault_stops_the_run_by_the_teams_default(tmp_path):
    """The topology's `safety.min_healthy_nodes` (a team's default, no option given): while the
    scenario's own kill of node1 is in force, someone else kills node2; the watcher of the
    scenario's load aborts the run (exit 5) within seconds, and node1 is restarted on the way
    out."""
    with reference_as_external(tmp_path) as topology:
        guarded = with_safety(topology, {"min_healthy_nodes": 2})
        log = (tmp_path / "run.log").open("w")
        run = subprocess.Popen([*HARNESS, "run", "--topology", str(guarded), "-m", "failover",
                                "-k", "http-kill", "--victim", "node1", "--fault-seconds", "30",
                                "--no-html", "--alluredir", str(tmp_path / "results")],
                               cwd=tmp_path, stdout=log, stderr=log, stdin=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 120
            while answers(topology)["node1"] and time.monotonic() < deadline:
                time.sleep(0.2)  # until the scenario's own kill is in force
            code, after = someone_else_kills(topology, "node2", run)
        finally:
            run.kill()
        said = (tmp_path / "run.log").read_text()
        health = answers(topology)
        node(topology, "restart", "node2")
    print(f"the run stopped {after:.1f} s after someone else's kill")
    assert code == 5, said[-2000:]
    assert "fewer than --min-healthy-nodes 2: node2 did not answer" in said, said[-2000:]
    assert after < 20, f"stopped {after:.1f} s after the kill"
    assert health["node1"], f"the scenario's killed node1 was not restarted: {health}"


def test_a_soak_plan_past_the_blast_radius_is_refused_in_one_sentence():
    done = subprocess.run([*HARNESS, "soak", "--minutes", "1", "--nodes", "3", "--max-faulted-nodes", "3",
                           "--dry-run"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert done.stderr.strip() == ("harness: --max-faulted-nodes 3 would let the soak fault every one of "
                                   "the 3 nodes at once: at most 2")
