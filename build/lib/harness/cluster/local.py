"""The `local` backend: every role a real process on its own loopback address. No Docker.

Addresses are 127.<slot>.<group>.<index>, the slot being the run's (see `procs`):

    127.S.0.1   HAProxy (entry: http 8080, https 8443)
    127.S.0.2   Toxiproxy server API (8474)
    127.S.0.3   Redis, the shared store (the Terracotta role)
    127.S.0.4   Redis, the back end the connection pools use (connections capped)
    127.S.1.i   node i's own listeners (http 5555, https 5543, ftp 2121, smtp 2525)
    127.S.2.i   node i's client-facing endpoints: Toxiproxy proxies to 127.S.1.i
    127.S.3.i   node i's link to the shared store: a Toxiproxy proxy to 127.S.0.3

So every client-facing port and every node-to-store link can be faulted, and the balancer
reaches nodes through the same proxies clients use.
"""

from __future__ import annotations

import shutil
import signal
import sys
from dataclasses import dataclass
from pathlib import Path

from harness.cluster.procs import wait_for_port
from harness.cluster.reference import (BACKEND_MAX_CLIENTS, LB_HTTP, NODE_PORTS, REDIS_PORT,
                                       TOXIPROXY_ENV, TOXIPROXY_PORT, Address, Layout, ReferenceCluster)
from harness.errors import HarnessError
from harness.kernel import HERE, Place


def _require(binary: str) -> str:
    path = shutil.which(binary)
    if path is None:
        raise HarnessError(f"{binary} is not installed; run scripts/setup.sh (or `make setup`)")
    return path


@dataclass(frozen=True)
class LoopbackLayout(Layout):
    slot: int

    @classmethod
    def for_slot(cls, slot: int) -> "LoopbackLayout":
        at = f"127.{slot}.0."
        return cls(f"{at}1", (f"{at}2", TOXIPROXY_PORT), (f"{at}3", REDIS_PORT), (f"{at}4", REDIS_PORT), slot)

    def _at(self, group: int, index: int) -> str:
        return f"127.{self.slot}.{group}.{index}"

    def node(self, i: int) -> str:
        return self._at(1, i)

    def public(self, i: int, link: str) -> Address:
        if link == "redis":
            return self._at(3, i), REDIS_PORT
        return self._at(2, i), NODE_PORTS[link]


class LocalCluster(ReferenceCluster):
    backend = "local"

    def _make_layout(self) -> LoopbackLayout:
        assert self.run is not None
        return LoopbackLayout.for_slot(self.run.slot)

    @property
    def _run(self):  # type: ignore[no-untyped-def]
        assert self.run is not None, "the cluster is closed"
        return self.run

    def _start_services(self) -> None:
        redis_bin, toxiproxy_bin = _require("redis-server"), _require("toxiproxy-server")
        lay = self.layout
        common = ["--port", str(REDIS_PORT), "--save", "", "--appendonly", "no", "--protected-mode", "no"]
        stores = [
            self._run.spawn("redis-store", [redis_bin, "--bind", lay.store[0], *common]),
            self._run.spawn("redis-backend", [redis_bin, "--bind", lay.backend[0], *common,
                                              "--maxclients", str(BACKEND_MAX_CLIENTS)]),
        ]
        host, port = lay.toxiproxy
        tp = self._run.spawn("toxiproxy", [toxiproxy_bin, "-host", host, "-port", str(port)],
                             env=TOXIPROXY_ENV)
        wait_for_port(host, port, 10, tp.name, tp.died)
        for proc, (host, port) in zip(stores, (lay.store, lay.backend)):
            wait_for_port(host, port, 10, proc.name, proc.died)

    def _start_lb(self) -> None:
        lb = self._run.spawn("haproxy", [_require("haproxy"), "-W", "-db", "-f", str(self._lb_path)])
        wait_for_port(self.layout.lb, LB_HTTP, 10, lb.name, lb.died)

    def _reload_lb(self) -> None:
        self._run.procs["haproxy"].signal(signal.SIGUSR2)

    def _launch_node(self, node_id: str, settings: Path) -> None:
        self._run.spawn(node_id, [sys.executable, "-m", "harness.sut", "--config", str(settings)])

    def _node_alive(self, node_id: str) -> bool:
        proc = self._run.procs.get(node_id)
        return proc is not None and proc.alive()

    def _node_failure(self, node_id: str) -> str:
        return " | ".join(self.node_log(node_id).strip().splitlines()[-3:])

    def _stop_node(self, node_id: str) -> None:
        self._run.stop(node_id)

    def _release(self) -> None:
        """The run slot stops every process it spawned."""

    def _kernel_place(self, node_id: str) -> tuple[Place, str]:
        return HERE, "lo"

    def _proc(self, node: str):  # type: ignore[no-untyped-def]
        self.topology.node(node)
        return self._run.procs[node]

    def kill(self, node: str) -> None:
        proc = self._proc(node)
        proc.signal(signal.SIGKILL)
        proc.popen.wait()
        self.paused.discard(node)

    def pause(self, node: str) -> None:
        self._proc(node).signal(signal.SIGSTOP)
        self.paused.add(node)

    def resume(self, node: str) -> None:
        self._proc(node).signal(signal.SIGCONT)
        self.paused.discard(node)

    def node_log(self, node: str) -> str:
        path = self.directory / f"{node}.log"
        return path.read_text(errors="replace") if path.exists() else ""
