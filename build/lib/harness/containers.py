"""The containers that publish ports on loopback, grouped as their operator made them, for
`harness init --docker`.

A cluster run in Docker is a group of containers: a docker compose project's carry the
`com.docker.compose.project` label; others are told apart by the user-defined networks they
share (`docker run --network`, compose's project network too). A container's protocols are
read from the container ports it publishes, by the ports servers listen on by default (80 is
HTTP, 21 FTP, ...): which host address and port a node is reached at is then the engine's
answer, not a guess. The balancer, when it is a container, publishes the entry's port: it is
not a node. `inspected` (what `docker container inspect` prints) is all the pure part reads.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from harness.config import is_loopback
from harness.errors import HarnessError

COMPOSE_PROJECT = "com.docker.compose.project"
# Container ports by protocol, in the order a node's server is most likely to listen on them.
PORTS = {"http": (80, 8080, 5555, 8000, 8888), "https": (443, 8443, 5543),
         "ftp": (21, 2121), "smtp": (25, 2525, 587)}
DEFAULT_NETWORKS = {"bridge", "host", "none"}
TIMEOUT_S = 10


@dataclass(frozen=True)
class Container:
    name: str
    group: str
    """its compose project, else the user-defined networks it is on (`net:a,b`)"""
    endpoints: Mapping[str, str]
    """protocol -> URL on loopback, as the engine publishes it"""


def container(inspected: Mapping) -> Container | None:
    """A running container's loopback endpoints; None for one that publishes none."""
    if not inspected.get("State", {}).get("Running"):
        return None
    published: dict[int, tuple[str, int]] = {}
    for spec, bindings in (inspected.get("NetworkSettings", {}).get("Ports") or {}).items():
        port, _, transport = spec.partition("/")
        for b in bindings or ():
            if transport == "tcp" and is_loopback(b.get("HostIp") or "0.0.0.0"):
                published.setdefault(int(port), (b["HostIp"], int(b["HostPort"])))
    endpoints = {}
    for proto, candidates in PORTS.items():
        port = next((p for p in candidates if p in published), None)
        if port is not None:
            host, host_port = published[port]
            endpoints[proto] = f"{proto}://{host}:{host_port}"
    if not endpoints:
        return None
    labels = inspected.get("Config", {}).get("Labels") or {}
    networks = sorted(set(inspected.get("NetworkSettings", {}).get("Networks") or {}) - DEFAULT_NETWORKS)
    group = labels.get(COMPOSE_PROJECT) or (f"net:{','.join(networks)}" if networks else "net:bridge")
    return Container(inspected.get("Name", "").lstrip("/"), group, endpoints)


def node_containers(inspected: Sequence[Mapping], entry_urls: Sequence[str],
                    wanted: str | None = None) -> list[Container]:
    """The containers of the one group that serves HTTP on loopback (or of group `wanted`: a
    compose project or a network), the entry's own container left out; sorted by name."""
    found = [c for c in map(container, inspected) if c is not None]
    entries = {u.rstrip("/") for u in entry_urls}
    nodes = [c for c in found if "http" in c.endpoints and not entries & set(c.endpoints.values())]
    groups: dict[str, list[Container]] = {}
    for c in nodes:
        groups.setdefault(c.group, []).append(c)
    if wanted:
        picked = {g: cs for g, cs in groups.items() if wanted in (g, g.removeprefix("net:"))
                  or wanted in g.removeprefix("net:").split(",")}
    else:
        picked = {g: cs for g, cs in groups.items() if len(cs) >= 2}
    if len(picked) == 1:
        return sorted(next(iter(picked.values())), key=lambda c: c.name)
    names = ", ".join(f"{g.removeprefix('net:')} ({len(cs)})" for g, cs in sorted(groups.items()))
    if not picked:
        raise HarnessError(
            f"no {'group ' + repr(wanted) + ' of ' if wanted else 'two '}containers publish HTTP "
            f"on loopback (port {', '.join(map(str, PORTS['http']))} published to 127.x.x.x)"
            f"{': found ' + names if names else ''}; give the nodes with --node URL")
    raise HarnessError(f"containers of several projects or networks publish HTTP on loopback: "
                       f"{names}; name the cluster's with --docker NAME")


def control_template(names: Mapping[str, str]) -> dict[str, str]:
    """node id -> its `control.docker`: one template with `{node}` where every container's
    name holds its node's id the same way, else each container's own name."""
    templates = {name.replace(node, "{node}", 1) for node, name in names.items() if node in name}
    if len(templates) == 1 and all(node in name for node, name in names.items()):
        template = templates.pop()
        return {node: template for node in names}
    return dict(names)


def inspect_running() -> list[dict]:
    """`docker container inspect` of every running container."""
    try:
        ids = subprocess.run(["docker", "ps", "-q"], capture_output=True, text=True,
                             timeout=TIMEOUT_S, check=False)
        if ids.returncode != 0:
            raise HarnessError(f"--docker: the Docker engine did not list its containers "
                               f"({(ids.stderr.strip().splitlines() or ['docker ps failed'])[-1]})")
        if not ids.stdout.split():
            return []
        done = subprocess.run(["docker", "container", "inspect", *ids.stdout.split()],
                              capture_output=True, text=True, timeout=TIMEOUT_S, check=False)
    except FileNotFoundError:
        raise HarnessError("--docker: the docker command is not installed here") from None
    except subprocess.TimeoutExpired:
        raise HarnessError(f"--docker: the Docker engine did not answer within {TIMEOUT_S} s") from None
    return json.loads(done.stdout or "[]")
