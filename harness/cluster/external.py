"""The `external` backend: a cluster the user already runs, described by a topology file.

The harness starts nothing. Nodes are controlled through the topology's command templates
(`{node}`, `{host}`) or its `docker` container names; network faults need a Toxiproxy server
named in the topology whose proxies are called `<node>-<link>`; without them those scenarios
are skipped, naming the field.

A control command runs in its own process group with no terminal, its output appended to a
per-run file (attached to the report as the node's log), never to the harness's pipes: a
script that starts a daemon inheriting its output cannot hang the run. A command that times
out is killed with its whole group; a timeout or a non-zero exit ends in one sentence naming
the node, the action and the command's last output lines.
"""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path
from urllib.parse import urlsplit

from harness.cluster.base import Cluster
from harness.cluster.toxiproxy import ToxiproxyApi
from harness.config import PROTOCOLS, NodeSpec, Topology
from harness.errors import HarnessError
from harness.secrets import redact

TAIL_LINES = 3


def node_host(node: NodeSpec) -> str:
    """The host of the node's first endpoint: what `{host}` stands for."""
    for proto in PROTOCOLS:
        url = node.endpoints.get(proto)
        if url:
            return urlsplit(url).hostname or ""
    return ""


def render_command(template: str, node: NodeSpec) -> str:
    return template.replace("{node}", shlex.quote(node.id)).replace(
        "{host}", shlex.quote(node_host(node)))


def _tail(log: Path, start: int) -> str:
    """The last lines a command wrote to `log` from offset `start`, secrets blanked."""
    with log.open("rb") as f:
        f.seek(start)
        lines = f.read().decode(errors="replace").strip().splitlines()[-TAIL_LINES:]
    return "last output: " + redact(" | ".join(lines)) if lines else "no output"


class ExternalCluster(Cluster):
    backend = "external"

    # A fault needs its command and the one that heals it, on every node it may hit.
    CONTROL_FOR = {"kill": ("kill", "restart"), "pause": ("pause", "resume")}

    def __init__(self, topology: Topology, wait_s: float = 10.0) -> None:
        self.topology = topology
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
        command = render_command(template, node)
        log = self._output(node_id)
        with log.open("a") as out:
            out.write(f"$ {command}\n")
            out.flush()
            start = out.tell()
            proc = subprocess.Popen(command, shell=True, stdin=subprocess.DEVNULL, stdout=out,
                                    stderr=subprocess.STDOUT, start_new_session=True)
            try:
                code = proc.wait(timeout=node.control.timeout_s)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
                raise HarnessError(f"'{action}' of {node_id} did not finish within "
                                   f"{node.control.timeout_s:.0f} s ({_tail(log, start)})") from None
        if code != 0:
            raise HarnessError(f"'{action}' of {node_id} failed with exit {code} "
                               f"({_tail(log, start)})")

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

    def reset(self) -> None:
        if self.toxiproxy:
            self.toxiproxy.reset()

    def node_log(self, node: str) -> str:
        """What the node's control commands printed this run (secrets blanked)."""
        path = self._output(node)
        return redact(path.read_text(errors="replace")) if path.exists() else ""

    def close(self) -> None:
        shutil.rmtree(self.directory, ignore_errors=True)
