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
import socket
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import redis
import requests

from harness.cluster.base import Cluster
from harness.cluster.haproxy import LbSettings, Server, fronted_port, render
from harness.cluster.procs import Run, wait_for_port
from harness.cluster.toxiproxy import ToxiproxyApi
from harness.config import Endpoints, NodeSpec, Tls, Topology
from harness.errors import HarnessError
from harness.mutants import Mutant, node_mutants
from harness.sut.redirect import render_redir_cnf
from harness.sut.settings import NodeSettings
from harness.tls import RunCA

NODE_PORTS = {"http": 5555, "https": 5543, "ftp": 2121, "smtp": 2525}
LB_HTTP, LB_HTTPS, TOXIPROXY_PORT, REDIS_PORT = 8080, 8443, 8474, 6379
POOL_SIZE = 4
BACKEND_MAX_CLIENTS = 64
LINKS = ("http", "https", "ftp", "smtp")
REDIR_EXCLUSIONS = ["wm.art"]


def _require(binary: str) -> str:
    path = shutil.which(binary)
    if path is None:
        raise HarnessError(f"{binary} is not installed; run scripts/setup.sh (or `make setup`)")
    return path


class LocalCluster(Cluster):
    backend = "local"

    def __init__(self, nodes: int = 3, mutant: Mutant | None = None) -> None:
        if nodes < 1:
            raise HarnessError(f"--nodes must be at least 1, not {nodes}")
        self.mutant = mutant
        self.run = Run.acquire()
        self.count = 0
        self.initial_nodes = nodes
        self.paused: set[str] = set()
        try:
            self._start(nodes)
        except BaseException:
            self.close()
            raise

    # -- start-up ---------------------------------------------------------------------------

    def _addr(self, group: int, index: int) -> str:
        return self.run.address(group, index)

    def _start(self, nodes: int) -> None:
        run = self.run
        self.ca = RunCA(run.directory)
        self.store_addr, self.backend_addr = self._addr(0, 3), self._addr(0, 4)
        redis_bin, toxiproxy_bin = _require("redis-server"), _require("toxiproxy-server")
        _require("haproxy")
        common = ["--port", str(REDIS_PORT), "--save", "", "--appendonly", "no",
                  "--protected-mode", "no"]
        stores = [
            run.spawn("redis-store", [redis_bin, "--bind", self.store_addr, *common]),
            run.spawn("redis-backend", [redis_bin, "--bind", self.backend_addr, *common,
                                        "--maxclients", str(BACKEND_MAX_CLIENTS)]),
        ]
        tp = run.spawn("toxiproxy", [toxiproxy_bin, "-host", self._addr(0, 2),
                                     "-port", str(TOXIPROXY_PORT)])
        self.toxiproxy = ToxiproxyApi(self._addr(0, 2), TOXIPROXY_PORT)
        wait_for_port(self._addr(0, 2), TOXIPROXY_PORT, 10, tp)
        self.topology = Topology(
            name=f"reference-{run.slot}", nodes=[NodeSpec(id="placeholder", endpoints=Endpoints())],
            entry=Endpoints(http=f"http://{self._addr(0, 1)}:{LB_HTTP}",
                            https=f"https://{self._addr(0, 1)}:{LB_HTTPS}"),
            tls=Tls(ca_file=self.ca.ca_file), toxiproxy=self.toxiproxy.url)
        self._nodes: list[NodeSpec] = []
        # The balancer's ports are fixed per slot, so proxies can point at it before it runs.
        self.lb = LbSettings(self._addr(0, 1), LB_HTTP, LB_HTTPS,
                             self.ca.issue_combined("lb", self._addr(0, 1)), self.ca.ca_file,
                             run.directory / "haproxy.sock")
        for proc in stores:
            wait_for_port(proc.argv[2], REDIS_PORT, 10, proc)
        self._spawn_nodes([self._prepare_node() for _ in range(nodes)])
        self._write_lb_config()
        lb = run.spawn("haproxy", [_require("haproxy"), "-W", "-db", "-f", str(self._lb_path)])
        wait_for_port(self._addr(0, 1), LB_HTTP, 10, lb)
        self.wait_in_rotation()

    def _prepare_node(self) -> NodeSettings:
        """Proxies, certificate and settings for the next node; returns its settings."""
        self.count += 1
        i, node_id = self.count, f"node{self.count}"
        own, public, store_link = self._addr(1, i), self._addr(2, i), self._addr(3, i)
        api = self.require_toxiproxy()
        for link in LINKS:
            upstream = f"{own}:{NODE_PORTS[link]}"
            if self.mutant and self.mutant.name == f"{link}_fronted":
                upstream = f"{self._addr(0, 1)}:{fronted_port(self.lb, link, i - 1)}"
            api.create_proxy(f"{node_id}-{link}", upstream, f"{public}:{NODE_PORTS[link]}")
        api.create_proxy(f"{node_id}-redis", f"{self.store_addr}:{REDIS_PORT}",
                         f"{store_link}:{REDIS_PORT}")
        cert = self.ca.issue(node_id, own, public)
        redir = self.run.directory / f"{node_id}-redir.cnf"
        admin_redirected = bool(self.mutant and self.mutant.name == "admin_redirected")
        redir.write_text(render_redir_cnf([] if admin_redirected else REDIR_EXCLUSIONS))
        settings = NodeSettings(
            node_id=node_id, host=own,
            http_port=NODE_PORTS["http"], https_port=NODE_PORTS["https"],
            ftp_port=NODE_PORTS["ftp"], smtp_port=NODE_PORTS["smtp"],
            advertise_http=f"http://{public}:{NODE_PORTS['http']}",
            advertise_https=f"https://{public}:{NODE_PORTS['https']}",
            redis_url=f"redis://{store_link}:{REDIS_PORT}/0",
            backend_url=f"redis://{self.backend_addr}:{REDIS_PORT}/0",
            pool_size=POOL_SIZE, tls_cert=cert.cert, tls_key=cert.key, redir_cnf=redir,
            mutants=node_mutants(self.mutant, i - 1, self.initial_nodes),
        )
        settings.write(self.run.directory / f"{node_id}.json")
        self._nodes.append(NodeSpec(id=node_id, endpoints=Endpoints(
            **{link: f"{link}://{public}:{NODE_PORTS[link]}" for link in LINKS})))
        self.topology = self.topology.model_copy(update={"nodes": list(self._nodes)})
        return settings

    def _spawn_node(self, node_id: str) -> None:
        settings = self.run.directory / f"{node_id}.json"
        self.run.spawn(node_id, [sys.executable, "-m", "harness.sut", "--config", str(settings)])

    def _spawn_nodes(self, nodes: list[NodeSettings]) -> None:
        for s in nodes:
            self._spawn_node(s.node_id)
        with ThreadPoolExecutor(len(nodes)) as pool:
            list(pool.map(self._wait_node, [s.node_id for s in nodes]))

    def _wait_node(self, node_id: str) -> None:
        proc = self.run.procs[node_id]
        host = self._addr(1, int(node_id.removeprefix("node")))
        for port in NODE_PORTS.values():
            wait_for_port(host, port, 15, proc)

    @property
    def _lb_path(self) -> Path:
        return self.run.directory / "haproxy.cfg"

    def _servers(self) -> list[Server]:
        def public(i: int, link: str) -> tuple[str, int]:
            # the balancer reaches nodes through their proxies; under the fronted mutants
            # it must reach their own FTP/SMTP listeners, or it would loop through itself
            group = 1 if link in ("ftp", "smtp") else 2
            return self._addr(group, i), NODE_PORTS[link]

        return [Server(n.id, *(public(i, link) for link in LINKS))
                for i, n in enumerate(self._nodes, start=1)]

    def _write_lb_config(self) -> None:
        self._lb_path.write_text(render(self.lb, self._servers(),
                                        self.mutant.name if self.mutant else None))

    # -- node control -----------------------------------------------------------------------

    def _proc(self, node: str):  # type: ignore[no-untyped-def]
        self.topology.node(node)
        return self.run.procs[node]

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

    def restart(self, node: str) -> None:
        if self._proc(node).alive():
            self.run.stop(node)
        self._spawn_node(node)
        self._wait_node(node)

    def add_node(self) -> str:
        settings = self._prepare_node()
        self._spawn_nodes([settings])
        if not (self.mutant and self.mutant.name == "lb_ignores_new_nodes"):
            self._write_lb_config()
            self.run.procs["haproxy"].signal(signal.SIGUSR2)
        return settings.node_id

    def reset(self) -> None:
        self.require_toxiproxy().reset()
        for node in self.node_ids:
            if node in self.paused:
                self.resume(node)
            if not self.run.procs[node].alive():
                self.restart(node)
            host = self._addr(1, int(node.removeprefix("node")))
            requests.post(f"http://{host}:{NODE_PORTS['http']}/_harness/reset", timeout=2)
        self.wait_in_rotation()

    # -- observation ------------------------------------------------------------------------

    def backend_connections(self) -> dict[str, int]:
        client = redis.Redis(host=self.backend_addr, port=REDIS_PORT, socket_timeout=2)
        try:
            names = [c.get("name", "") for c in client.client_list()]
        except redis.RedisError as e:
            raise HarnessError(f"the back end refused to list its connections: {e}") from None
        finally:
            client.close()
        return {n: names.count(f"pool-{n}") for n in self.node_ids}

    @property
    def backend_limit(self) -> int:
        return BACKEND_MAX_CLIENTS

    @property
    def pool_size(self) -> int:
        return POOL_SIZE

    def node_log(self, node: str) -> str:
        path = self.run.directory / f"{node}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def lb_config(self) -> str:
        return self._lb_path.read_text() if self._lb_path.exists() else ""

    def lb_status(self) -> dict[str, str]:
        """Server status per node in the HTTP backend, from HAProxy's stats socket."""
        with socket.socket(socket.AF_UNIX) as s:
            s.settimeout(2)
            s.connect(str(self.lb.socket))
            s.sendall(b"show stat\n")
            data = b""
            while chunk := s.recv(65536):
                data += chunk
        rows = [line.split(",") for line in data.decode().splitlines() if line and line[0] != "#"]
        return {r[1]: r[17] for r in rows if len(r) > 17 and r[0] == "nodes_http"
                and r[1] not in ("FRONTEND", "BACKEND")}

    def close(self) -> None:
        if getattr(self, "run", None) is not None:
            self.run.release()
            self.run = None  # type: ignore[assignment]

