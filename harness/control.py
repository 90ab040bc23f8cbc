"""The reference cluster as an external one: `harness up --topology-out FILE`.

`harness up` holds the running cluster; this module lets other processes control it, so
that the topology it writes describes the reference cluster exactly as a user would describe
theirs: entry points and endpoints, identity rules, TLS, a Toxiproxy server, the evidence
sources (requests to its administrative services, `redis-cli` at its back end) and node
control as command templates, `harness node ACTION NODE --socket SOCK`. Those commands talk
to a `ControlServer` on a Unix socket in the run's directory, which acts on the cluster
object. Running `pytest scenarios/ --topology FILE` against it takes the external path end
to end: the proof that the topology model can describe everything the scenarios need.
"""

from __future__ import annotations

import contextlib
import os
import socket
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from harness.errors import HarnessError
from harness.fault_kinds import CONTROL_ACTIONS
from harness.runstate import write_whole

if TYPE_CHECKING:  # the CLI reads ACTIONS for its choices: this module imports light
    from harness.cluster.base import Cluster

NODE_ACTIONS = (*CONTROL_ACTIONS, "remove")
"""what `harness node` does to a node: every control action a topology may give, and removal"""
ACTIONS = (*NODE_ACTIONS, "add")
METHODS = {"remove": "remove_node", "unavailable": "make_unavailable", "available": "make_available"}


class ControlServer:
    """Serves one request a connection: `ACTION [NODE]\\n` -> `ok [RESULT]` or `error SENTENCE`.

    Requests are handled one at a time, as the cluster object is not meant for concurrent
    control; the socket is private to the run's directory (mode 600)."""

    def __init__(self, cluster: Cluster, path: Path) -> None:
        self.cluster, self.path = cluster, path
        path.unlink(missing_ok=True)
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            self._sock.bind(str(path))
        except OSError as e:  # most often a path over the 107 bytes a Unix socket's may have
            self._sock.close()
            raise HarnessError(f"cannot listen on the control socket {path} ({e}); "
                               "a shorter HARNESS_STATE_DIR gives it a shorter path") from e
        os.chmod(path, 0o600)
        self._sock.listen(4)
        self._sock.settimeout(0.2)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="harness-control", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except (TimeoutError, OSError):
                continue
            with conn:
                conn.settimeout(5)
                with contextlib.suppress(OSError):
                    line = conn.makefile().readline().strip()
                    conn.sendall((self.handle(line) + "\n").encode())

    def handle(self, line: str) -> str:
        action, _, node = line.partition(" ")
        try:
            if action not in ACTIONS:
                raise HarnessError(f"unknown action {action!r}; known: {', '.join(ACTIONS)}")
            if action == "add":
                return f"ok {self.cluster.add_node()}"
            if not node:
                raise HarnessError(f"'{action}' needs a node")
            getattr(self.cluster, METHODS.get(action, action))(node)
            return "ok"
        except HarnessError as e:
            return f"error {e}"

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        self._sock.close()
        self.path.unlink(missing_ok=True)


def request(path: Path, action: str, node: str | None = None, timeout_s: float = 60.0) -> str:
    """Ask the `harness up` behind `path` to act; its result (a new node's id), or an error."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(timeout_s)
            s.connect(str(path))
            s.sendall(f"{action} {node or ''}".strip().encode() + b"\n")
            reply = s.makefile().readline().strip()
    except OSError as e:
        raise HarnessError(f"no `harness up` answers on {path} ({e.strerror or e})") from None
    status, _, rest = reply.partition(" ")
    if status != "ok":
        raise HarnessError(rest or "the harness up process gave no answer")
    return rest


def external_topology(cluster: Cluster, socket_path: Path) -> dict[str, Any]:
    """The running cluster's topology for the external backend, node control included."""
    node = f"{sys.executable} -m harness.cli node {{action}} {{node}} --socket {socket_path}"
    from harness.config import NodeControl

    control = NodeControl(**{a: node.replace("{action}", a) for a in NODE_ACTIONS if a != "remove"})
    topology = cluster.topology.model_copy(update={
        "nodes": [n.model_copy(update={"control": control}) for n in cluster.topology.nodes]})
    data = topology.model_dump(mode="json", exclude_defaults=True)
    scale = data.setdefault("evidence", {}).setdefault("scale", {})
    scale["add"] = f"{sys.executable} -m harness.cli node add --socket {socket_path}"
    scale["remove"] = node.replace("{action}", "remove")
    if cluster.backend == "local":  # the nodes' store links, for kernel faults on loopback
        state = data["evidence"].setdefault("state", {})
        state["store_address"] = {n: "%s:%d" % _store_link(cluster, n) for n in cluster.node_ids}
    return data


def _store_link(cluster: Cluster, node: str) -> tuple[str, int]:
    scope = cluster.kernel_scope(node, "redis")
    assert scope.address is not None
    return scope.address, scope.port


def write_topology(cluster: Cluster, socket_path: Path, out: Path) -> None:
    write_whole(out, "# The running reference cluster, as an external cluster (harness up "
                "--topology-out)\n" + yaml.safe_dump(external_topology(cluster, socket_path),
                                                     sort_keys=False, width=1000))
