"""The `external` backend: a cluster the user already runs, described by a topology file.

The harness starts nothing. Nodes are controlled through the topology's command templates
(`{node}`, `{host}`) or its `docker` container names, run by `harness.commands` in the
topology file's folder, with their output in a per-run file attached to the report as the node's log; network faults need a
Toxiproxy server named in the topology whose proxies are called `<node>-<link>`; without
them those scenarios are skipped, naming the field.
"""

from __future__ import annotations

import ipaddress
import json
import shlex
import shutil
import socket
import tempfile
from pathlib import Path
from urllib.parse import urlsplit

from harness import commands
from harness.cluster.base import Cluster
from harness.config import DEFAULT_PORTS, PROTOCOLS, Topology
from harness.errors import HarnessError
from harness.fault_kinds import KINDS
from harness.history.timeline import FaultKind
from harness.history.requests import ENTRY
from harness.kernel import HERE, NoScope, Place, Scope, in_namespace_of, over_ssh
from harness.toxiproxy import ToxiproxyApi


class ExternalCluster(Cluster):
    backend = "external"


    def __init__(self, topology: Topology, wait_s: float = 10.0) -> None:
        self.topology = topology
        self.wait_s = wait_s
        self.directory = Path(tempfile.mkdtemp(prefix="harness-external-"))
        self.warnings = []
        self.out_of_rotation: set[str] = set()
        """nodes the entry never answered from when the run began: said once, not waited for
        again before every scenario (a balancer that sends this client to one node)"""
        self._rotation_seen = False
        try:
            if topology.toxiproxy:
                parts = urlsplit(topology.toxiproxy)
                self.toxiproxy = ToxiproxyApi(parts.hostname or "", parts.port or 8474)
                self.toxiproxy.wait_ready(timeout_s=5)
            self._wait_in_rotation()
        except BaseException:
            self.close()
            raise

    def _output(self, node: str) -> Path:
        return self.directory / f"{node}-control.log"

    def _control(self, action: str, node_id: str) -> None:
        node = self.topology.node(node_id)
        line = node.control_line(action)
        if not line:
            raise HarnessError(f"the topology gives no '{action}' command for node {node_id!r} "
                               f"(field nodes[{node_id}].control.{action})")
        commands.run(line, {}, self._output(node_id), node.control.timeout_s,
                     f"'{action}' of {node_id}", cwd=self.topology.directory)

    def missing_for_fault(self, kind: FaultKind) -> str | None:
        if not KINDS[kind].control:  # a fault needs its command and the one that heals it
            return super().missing_for_fault(kind)
        for node in self.topology.nodes:
            for action in KINDS[kind].control:
                if not node.control_line(action):
                    return f"nodes[{node.id}].control.{action}"
        return None

    def kernel_scope(self, node: str, link: str) -> Scope:
        return kernel_scope(self.topology, node, link, self._output(node))

    def kill(self, node: str) -> None:
        self._control("kill", node)

    def pause(self, node: str) -> None:
        self._control("pause", node)

    def resume(self, node: str) -> None:
        self._control("resume", node)

    def restart(self, node: str) -> None:
        self._control("restart", node)

    def make_unavailable(self, node: str) -> None:
        self._control("unavailable", node)

    def make_available(self, node: str) -> None:
        self._control("available", node)

    def add_node(self) -> str:
        """Run `evidence.scale.add`; the last line it prints is the new node's id."""
        spec = self.topology.evidence.scale
        if spec is None or spec.add is None:
            raise HarnessError("the topology gives no command that adds a node (evidence.scale.add)")
        out = commands.run(spec.add, {}, self.directory / "scale.log", spec.timeout_s,
                           "evidence.scale.add", cwd=self.topology.directory).strip().splitlines()
        if not out:
            raise HarnessError("evidence.scale.add printed no node id (its last line must be it)")
        return out[-1].strip()

    def remove_node(self, node: str) -> None:
        spec = self.topology.evidence.scale
        if spec is None or spec.remove is None:
            raise HarnessError("the topology gives no command that removes a node (evidence.scale.remove)")
        commands.run(spec.remove, {"node": node}, self.directory / "scale.log", spec.timeout_s,
                     f"evidence.scale.remove of {node}", cwd=self.topology.directory)

    def reset(self) -> None:
        """Heal the network faults and wait until every node answers through the entry again:
        a node the previous scenario restarted may not be back in the balancer's rotation yet,
        and a scenario started then judges a smaller cluster than the topology describes."""
        if self.toxiproxy:
            self.toxiproxy.reset()
        self._wait_in_rotation()

    def _wait_in_rotation(self) -> None:
        """Until every node answers through the entry (a node a scenario restarted may be on
        its way back), but those the entry never answered from: said once, at the start."""
        first, self._rotation_seen = not self._rotation_seen, True
        want = [n for n in self.node_ids if n not in self.out_of_rotation]
        missing = self.not_in_rotation(want, timeout_s=self.wait_s)
        if missing and first:
            self.out_of_rotation = set(missing)
            self.warnings.append(
                f"the entry answered from none of {', '.join(missing)} in {self.wait_s:g} s: they are "
                "not waited for again before each scenario (C1 judges the split)")
        elif missing:
            self.warnings.append(f"node(s) {', '.join(missing)} did not come back into the entry's "
                                 f"rotation within {self.wait_s:g} s")

    def node_log(self, node: str) -> str:
        """What the node's control commands printed this run (secrets blanked as written)."""
        path = self._output(node)
        return path.read_text(errors="replace") if path.exists() else ""

    def close(self) -> None:
        shutil.rmtree(self.directory, ignore_errors=True)


def kernel_scope(topology: Topology, node: str, link: str, log: Path) -> Scope:
    """Where kernel faults on an external node's `link` go: its endpoint for a protocol; for
    a partition, everything between the node and its peer (`entry`: the balancer, at the
    entry's host; or another node, at its host); for any other link name, its connection to
    the store at `evidence.state.store_address`. The commands run on the node's host over
    `control.ssh`, else where `control.network` says, else in the `control.docker`
    container's namespace (found with `docker inspect`, output to `log`), else here for a
    node on a loopback address (where a partition, which needs the node's own namespace,
    cannot go)."""
    spec = topology.node(node)
    control = spec.control
    if link in PROTOCOLS:
        url = getattr(spec.endpoints, link)
        if url is None:
            raise NoScope(f"nodes[{node}].endpoints.{link}")
        parts = urlsplit(url)
        address, port, role = parts.hostname or "", parts.port or DEFAULT_PORTS[link], "listener"
    elif link == ENTRY or link in topology.node_ids:
        hosts = topology.entry.hosts() if link == ENTRY else [topology.node(link).host]
        if not hosts or not hosts[0]:
            raise NoScope("entry" if link == ENTRY else f"nodes[{link}].endpoints")
        if not (control.ssh or control.network):  # a container sees the entry elsewhere
            raise NoScope(*_rules_fields(node))
        address, port, role = hosts[0], 0, "peer"
    else:
        state = topology.evidence.state
        store = state.store_address_of(node) if state else None
        if store is None:
            raise NoScope("evidence.state.store_address")
        (address, port), role = store, "client"
    if control.ssh:
        return Scope(over_ssh(control.ssh, spec.host, node), port, address, role,
                     control.network_device, f"nodes[{node}].control.network_device")
    if control.network:
        place = Place(f"{node}'s host (nodes[{node}].control.network)", template=control.network,
                      values=tuple(spec.placeholders().items()))
        return Scope(place, port, address, role, control.network_device,
                     f"nodes[{node}].control.network_device")
    if control.docker:
        container = commands.render(control.docker, spec.placeholders(), quote=False)
        # asked each time, not cached: a container the nemesis restarted has a new PID
        found = commands.run(
            f"docker inspect --format '{{{{.State.Pid}}}} {{{{json .NetworkSettings.Ports}}}}' "
            f"{shlex.quote(container)}", {}, log, 30, f"finding container {container}")
        pid, _, ports = found.strip().splitlines()[-1].partition(" ")
        # inside the container the node's own address is not the endpoint's host, and its
        # port is the one the endpoint's is published from
        if role == "listener":
            port = published_from(json.loads(ports or "null") or {}, address, port)
        return Scope(in_namespace_of(int(pid), f"container {container}"), port,
                     None if role == "listener" else address, role, control.network_device or "eth0")
    if not _loopback(address):
        raise NoScope(*_rules_fields(node))
    return Scope(HERE, port, address, role, control.network_device or "lo")


def published_from(ports: dict[str, list[dict[str, str]] | None], host: str, port: int) -> int:
    """The container's TCP port that `host:port` on this machine is published from (docker
    inspect's NetworkSettings.Ports), or `port` itself where none is (the endpoint is the
    container's own address, or the container shares the host's network)."""
    for inside, bindings in ports.items():
        number, _, proto = inside.partition("/")
        for b in bindings or []:
            if proto == "tcp" and b.get("HostPort") == str(port) and \
                    b.get("HostIp", "") in ("", "0.0.0.0", "::", host):
                return int(number)
    return port


def _rules_fields(node: str) -> tuple[str, str]:
    """Where kernel rules for a node on another host go: its `ssh:` block (which may sit beside
    command templates), or a `network` template that runs a command there."""
    return f"nodes[{node}].control.ssh", f"nodes[{node}].control.network"


def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(socket.gethostbyname(host)).is_loopback
    except OSError:
        return False
