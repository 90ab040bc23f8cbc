"""The `external` backend: a cluster the user already runs, described by a topology file.

The harness starts nothing. Nodes are controlled through the topology's command templates
(`{node}` replaced by the node id); network faults need a Toxiproxy server named in the
topology whose proxies are called `<node>-<link>`; without it those scenarios are skipped.
"""

from __future__ import annotations

import shlex
import subprocess
from urllib.parse import urlsplit

from harness.cluster.base import Cluster
from harness.cluster.toxiproxy import ToxiproxyApi
from harness.config import Topology
from harness.errors import HarnessError

COMMAND_TIMEOUT_S = 60


class ExternalCluster(Cluster):
    backend = "external"

    def __init__(self, topology: Topology) -> None:
        self.topology = topology
        if topology.toxiproxy:
            parts = urlsplit(topology.toxiproxy)
            self.toxiproxy = ToxiproxyApi(parts.hostname or "", parts.port or 8474)
            self.toxiproxy.wait_ready(timeout_s=5)
        self.wait_in_rotation(timeout_s=10)

    def _control(self, action: str, node: str) -> None:
        template = getattr(self.topology.node(node).control, action)
        if not template:
            raise HarnessError(f"the topology gives no '{action}' command for node {node!r} "
                               f"(field nodes.{node}.control.{action})")
        command = template.replace("{node}", shlex.quote(node))
        done = subprocess.run(command, shell=True, capture_output=True, text=True,
                              timeout=COMMAND_TIMEOUT_S)
        if done.returncode != 0:
            raise HarnessError(f"'{action}' of {node} failed (exit {done.returncode}): "
                               f"{done.stderr.strip()[:200]}")

    def kill(self, node: str) -> None:
        self._control("kill", node)

    def pause(self, node: str) -> None:
        self._control("pause", node)

    def resume(self, node: str) -> None:
        self._control("resume", node)

    def restart(self, node: str) -> None:
        self._control("restart", node)

    def reset(self) -> None:
        if self.toxiproxy:
            self.toxiproxy.reset()
