"""The external backend's node control through the Docker engine (the `docker` form, for
clusters run with docker compose), on a container of our own with no network."""

import secrets
import subprocess

import docker
import pytest

from harness.cluster.external import ExternalCluster, published_from
from harness.cluster.images import ensure_base
from harness.config import parse_topology


def state(name: str) -> str:
    return subprocess.run(["docker", "inspect", "-f", "{{.State.Status}}", name],
                          capture_output=True, text=True, timeout=30).stdout.strip()


@pytest.mark.cluster
@pytest.mark.docker
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


PORTS = {"80/tcp": [{"HostIp": "127.13.1.1", "HostPort": "8080"}],
         "443/tcp": [{"HostIp": "127.13.1.1", "HostPort": "8443"}],
         "25/tcp": [{"HostIp": "0.0.0.0", "HostPort": "2525"}, {"HostIp": "::", "HostPort": "2525"}],
         "53/udp": [{"HostIp": "127.13.1.1", "HostPort": "8081"}], "22/tcp": None}


@pytest.mark.parametrize(("host", "port", "inside"), [
    ("127.13.1.1", 8080, 80), ("127.13.1.1", 8443, 443), ("127.13.1.1", 2525, 25),
    ("127.13.1.2", 8080, 8080),   # published on another address: not this endpoint's
    ("127.13.1.1", 8081, 8081),   # a UDP port is not the TCP endpoint's
    ("198.18.12.11", 80, 80)])    # the container's own address: its own port
def test_a_kernel_fault_in_a_container_goes_to_the_port_the_endpoint_is_published_from(host, port, inside):
    """A node at 127.13.1.1:8080 published from the container's port 80: a cut inside the
    container's namespace must match 80, or it cuts nothing (found on the zoo's docker-apache)."""
    assert published_from(PORTS, host, port) == inside
