"""The `external` backend: a cluster the user already runs, described by a topology file.

The harness starts nothing. Nodes are controlled through the topology's command templates
(`{node}`, `{host}`) or its `docker` container names, run by `harness.commands` with their
output in a per-run file attached to the report as the node's log; network faults need a
Toxiproxy server named in the topology whose proxies are called `<node>-<link>`; without
them those scenarios are skipped, naming the field.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from urllib.parse import urlsplit

from harness import commands
from harness.cluster.base import Cluster
from harness.cluster.toxiproxy import ToxiproxyApi
from harness.config import Topology
from harness.errors import HarnessError


class ExternalCluster(Cluster):
    backend = "external"

    # A fault needs its command and the one that heals it, on every node it may hit.
    CONTROL_FOR = {"kill": ("kill", "restart"), "pause": ("pause", "resume")}

    def __init__(self, topology: Topology, wait_s: float = 10.0) -> None:
        self.topology = topology
        self.wait_s = wait_s
        self.directory = Path(tempfile.mkdtemp(prefix="harness-external-"))
        try:
            if topology.toxiproxy:
                parts = urlsplit(topology.toxiproxy)
                self.toxiproxy = ToxiproxyApi(parts.hostname or "", parts.port or 8474)
                self.toxiproxy.wait_ready(timeout_s=5)
            self.wait_in_rotation(timeout_s=wait_s)
        except BaseException:
            self.close()
            raise

    def _output(self, node: str) -> Path:
        return self.directory / f"{node}-control.log"

    def _control(self, action: str, node_id: str) -> None:
        node = self.topology.node(node_id)
        template = node.control.command(action)
        if not template:
            raise HarnessError(f"the topology gives no '{action}' command for node {node_id!r} "
                               f"(field nodes[{node_id}].control.{action})")
        commands.run(template, node.placeholders(), self._output(node_id), node.control.timeout_s,
                     f"'{action}' of {node_id}")

    def missing_for_fault(self, kind: str) -> str | None:
        if kind not in self.CONTROL_FOR:
            return super().missing_for_fault(kind)
        for node in self.topology.nodes:
            for action in self.CONTROL_FOR[kind]:
                if not node.control.command(action):
                    return f"nodes[{node.id}].control.{action}"
        return None

    def kill(self, node: str) -> None:
        self._control("kill", node)

    def pause(self, node: str) -> None:
        self._control("pause", node)

    def resume(self, node: str) -> None:
        self._control("resume", node)

    def restart(self, node: str) -> None:
        self._control("restart", node)

    def add_node(self) -> str:
        """Run `evidence.scale.add`; the last line it prints is the new node's id."""
        spec = self.topology.evidence.scale
        if spec is None or spec.add is None:
            raise HarnessError("the topology gives no command that adds a node (evidence.scale.add)")
        out = commands.run(spec.add, {}, self.directory / "scale.log", spec.timeout_s,
                           "evidence.scale.add").strip().splitlines()
        if not out:
            raise HarnessError("evidence.scale.add printed no node id (its last line must be it)")
        return out[-1].strip()

    def remove_node(self, node: str) -> None:
        spec = self.topology.evidence.scale
        if spec is None or spec.remove is None:
            raise HarnessError("the topology gives no command that removes a node (evidence.scale.remove)")
        commands.run(spec.remove, {"node": node}, self.directory / "scale.log", spec.timeout_s,
                     f"evidence.scale.remove of {node}")

    def reset(self) -> None:
        """Heal the network faults and wait until every node answers through the entry again:
        a node the previous scenario restarted may not be back in the balancer's rotation yet,
        and a scenario started then judges a smaller cluster than the topology describes."""
        if self.toxiproxy:
            self.toxiproxy.reset()
        self.wait_in_rotation(timeout_s=self.wait_s)

    def node_log(self, node: str) -> str:
        """What the node's control commands printed this run (secrets blanked as written)."""
        path = self._output(node)
        return path.read_text(errors="replace") if path.exists() else ""

    def close(self) -> None:
        shutil.rmtree(self.directory, ignore_errors=True)
