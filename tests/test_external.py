"""The external backend's node control through the Docker engine (the `docker` form, for
clusters run with docker compose), on a container of our own with no network."""

import secrets
import subprocess

import docker
import pytest

from harness.cluster.external import ExternalCluster
from harness.cluster.images import ensure_base
from harness.config import parse_topology

pytestmark = [pytest.mark.cluster, pytest.mark.docker]


def state(name: str) -> str:
    return subprocess.run(["docker", "inspect", "-f", "{{.State.Status}}", name],
                          capture_output=True, text=True, timeout=30).stdout.strip()


def test_docker_control_kills_pauses_resumes_and_restarts_a_container():
    prefix = f"harness-ctl-{secrets.token_hex(4)}"
    name = f"{prefix}-n1"
    ensure_base(docker.from_env())  # built from Debian's packages where no registry answers
    subprocess.run(["docker", "run", "-d", "--network", "none", "--name", name,
                    "debian:bookworm-slim", "sleep", "300"], check=True, capture_output=True,
                   timeout=60)
    topology = parse_topology({"entry": {}, "nodes": [
        {"id": "n1", "endpoints": {}, "control": {"docker": f"{prefix}-{{node}}"}}]})
    cluster = ExternalCluster(topology)
    try:
        assert cluster.missing_for_fault("kill") is None and cluster.missing_for_fault("pause") is None
        cluster.pause("n1")
        assert state(name) == "paused"
        cluster.resume("n1")
        assert state(name) == "running"
        cluster.kill("n1")
        assert state(name) == "exited"
        cluster.restart("n1")
        assert state(name) == "running"
        assert f"$ docker pause {name}" in cluster.node_log("n1")
    finally:
        cluster.close()
        subprocess.run(["docker", "rm", "-f", name], capture_output=True, timeout=60)
