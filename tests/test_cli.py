"""The command-line interfaces other scripts call, and their answers to bad input."""

import os
import platform
import subprocess
import sys
from pathlib import Path

import pytest

from harness.mutants import MUTANTS

ROOT = Path(__file__).resolve().parent.parent
HARNESS = [sys.executable, "-m", "harness.cli"]


def run(*args, **kwargs):
    return subprocess.run(list(args), capture_output=True, text=True, cwd=ROOT, timeout=120, **kwargs)


def test_mutants_lists_name_then_property_one_a_line():
    out = run(*HARNESS, "mutants").stdout.splitlines()
    assert [line.split()[:2] for line in out] == [[m.name, m.prop] for m in MUTANTS]
    assert {m.prop for m in MUTANTS} >= {f"C{i}" for i in range(1, 15)} - {"C3", "C4"}


def test_doctor_finds_every_required_component():
    done = run(*HARNESS, "doctor")
    assert done.returncode == 0, done.stdout
    for name in ("HAProxy", "Redis", "Toxiproxy server", "Allure", "Java"):
        assert any(line.startswith("ok ") and name in line for line in done.stdout.splitlines()), name
    lines = done.stdout.splitlines()
    assert lines[0].split()[:2] == ["Python", platform.python_version()]
    assert lines[1].split()[0] == "OS" and "Docker origin" in lines[2]
    assert lines[3].split()[:2] == ["Kernel", "faults"] and "iptables yes" in lines[3]


@pytest.mark.docker
def test_doctor_finds_the_docker_engine():
    """Optional (auto falls back to local without it), but found where it runs."""
    done = run(*HARNESS, "doctor")
    assert any(line.startswith("ok ") and "Docker engine" in line for line in done.stdout.splitlines())


def test_bad_input_is_one_sentence_and_a_nonzero_exit(tmp_path):
    bad_nodes = run(*HARNESS, "up", "--nodes", "0", "--backend", "local")
    assert bad_nodes.returncode == 2
    assert bad_nodes.stderr.strip() == "harness: --nodes must be at least 1, not 0"
    missing = run(sys.executable, "-m", "pytest", "scenarios/", "--topology", str(tmp_path / "no.yaml"),
                  "-p", "no:cacheprovider", "-q")
    assert missing.returncode == 2
    assert f"topology file '{tmp_path / 'no.yaml'}' does not exist" in missing.stdout + missing.stderr
    remote = tmp_path / "remote.yaml"
    remote.write_text("entry: {http: 'http://192.0.2.1:80'}\nnodes: [{id: a, endpoints: {}}]\n")
    refused = run(sys.executable, "-m", "pytest", "scenarios/", "--topology", str(remote),
                  "-p", "no:cacheprovider", "-q")
    assert refused.returncode == 2 and "--allow-remote-targets" in refused.stdout + refused.stderr
    report = run(*HARNESS, "report", str(tmp_path / "none"))
    assert report.returncode == 2 and report.stderr.count("\n") == 1


def test_an_engine_that_does_not_answer_is_named(tmp_path):
    env = {**os.environ, "DOCKER_HOST": f"unix://{tmp_path}/no.sock"}
    done = run(*HARNESS, "up", "--backend", "docker", env=env)
    assert done.returncode == 2
    assert done.stderr == f"harness: the Docker engine does not answer at unix://{tmp_path}/no.sock; " \
                          "start it with scripts/setup.sh\n"


def test_victim_all_runs_a_fault_once_per_node_and_a_wrong_victim_is_one_sentence():
    pytest_ = [sys.executable, "-m", "pytest", "scenarios/", "--backend", "local", "-p", "no:cacheprovider"]
    done = run(*pytest_, "--victim", "all", "-m", "failover and http", "-k", "kill", "--collect-only", "-q")
    assert done.returncode == 0, done.stdout[-500:]
    collected = [line for line in done.stdout.splitlines() if "::" in line]
    assert [c.rsplit("[", 1)[1] for c in collected] == [f"http-victim=node{i}-kill]" for i in (1, 2, 3)]
    wrong = run(*pytest_, "--victim", "node9", "--collect-only", "-q")
    assert wrong.returncode == 4
    assert "--victim node9: the cluster has no node 'node9' (its nodes: node1, node2, node3)" in wrong.stderr
