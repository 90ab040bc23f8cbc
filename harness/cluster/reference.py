"""The reference cluster's wiring, shared by the backends that start it (local, docker).

What is the same whatever runs the roles: one Redis as the shared store (the Terracotta
role), one Redis as the back end the per-node connection pools use (connections capped), the
real Toxiproxy server in front of every client-facing node port and every node-to-store link,
HAProxy balancing HTTP and HTTPS over the nodes through those proxies, a CA per run, and the
mutant switches. A backend supplies only two things: where each role is reached (`Layout`)
and how a role is started, signalled and stopped (the abstract methods).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import requests

from harness.cluster.base import Cluster
from harness.cluster.haproxy import FTP_ENTRY, LbSettings, Server, fronted_port, haproxy_config
from harness.cluster.procs import Run, wait_for_port
from harness.toxiproxy import ToxiproxyApi
from harness.config import Endpoints, NodeSpec, Tls, Topology
from harness.errors import HarnessError
from harness.history.requests import ENTRY
from harness.kernel import NoScope, Place, Scope
from harness.evidence import (Admin, Call, EvidenceSpec, Manifest, Pools, Redirect, Replication,
                              Scale, SideEffects, Source, State, Toggle)
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
REPLICATED_PACKAGE, DEMO_PACKAGE = "HarnessExtras", "HarnessDemo"
START_TIMEOUT_S = 15.0
# Toxiproxy logs every client connection at its default level (98 MB in one run directory
# after a few suites); warnings and errors are what a report needs.
TOXIPROXY_ENV = {"LOG_LEVEL": "warn"}

Address = tuple[str, int]


@dataclass(frozen=True)
class Layout(ABC):
    """Where each role listens, as the harness (and every other role) reaches it."""

    lb: str
    toxiproxy: Address
    store: Address
    backend: Address

    @abstractmethod
    def node(self, i: int) -> str:
        """Node i's own address; its listeners bind there on `NODE_PORTS`."""

    @abstractmethod
    def public(self, i: int, link: str) -> Address:
        """Node i's client-facing endpoint for `link`, or its store link ("redis"): a proxy."""

    def proxy_bind(self, i: int, link: str) -> str:
        """What the Toxiproxy server binds for that proxy (its own view of `public`)."""
        host, port = self.public(i, link)
        return f"{host}:{port}"


def _admin(service: str, **params: str) -> Call:
    return Call(path=f"/invoke/wm.art.admin:{service}", params=params)


def _invoke(service: str, **params: str) -> Call:
    return Call(path=f"/invoke/harness.demo:{service}", params=params)


def reference_evidence(backend: Address) -> EvidenceSpec:
    """The reference cluster described as any cluster would be: its administrative services
    (the `wm.art.admin` folder), its demo services, and `redis-cli` at the back end, where
    every node's pool connections carry the name `pool-<node>` (`-e`: a back end too full to
    answer fails the command instead of reading as no connections)."""
    host, port = backend
    return EvidenceSpec(
        manifest=Manifest(source=Source(request=_admin("packages")), ignore=["node"]),
        replication=Replication(
            publish=Source(request=_admin("replicate", package=REPLICATED_PACKAGE,
                                          version="{version}")),
            version=Source(request=_admin("packages"), json_path=f"packages.{REPLICATED_PACKAGE}")),
        redirect=Redirect(
            unable=Toggle(make=Source(request=_admin("packageDisable", package=DEMO_PACKAGE)),
                          undo=Source(request=_admin("packageEnable", package=DEMO_PACKAGE))),
            service=_invoke("echo")),
        admin=Admin(
            services=[_admin("setConnection", name="harness.demo.conn:orders", value="jdbc:backend"),
                      _admin("packages"), _admin("poolStats"), _admin("health")],
            redirecting=Toggle(make=Source(request=_admin("quiesce", enable="true")),
                               undo=Source(request=_admin("quiesce", enable="false"))),
            undo=[_admin("deleteConnection", name="harness.demo.conn:orders")]),
        state=State(write=_invoke("cachePut", key="{key}", value="{value}"),
                    read=Source(request=_invoke("cacheGet", key="{key}"), json_path="value"),
                    session=Source(request=_invoke("counter"), json_path="count"),
                    store_link="redis"),
        pools=Pools(connections=Source(command=f"redis-cli -e -h {host} -p {port} client list",
                                       regex=r"\bname=pool-{node}\b", count=True),
                    pool_size=POOL_SIZE, backend_limit=BACKEND_MAX_CLIENTS,
                    load=_invoke("poolQuery")),
        side_effects=SideEffects(recorded=Source(request=_admin("audit"), json_path="entries"),
                                 order=_invoke("order", key="{key}")),
        # a node's capacity is its thread pool, not this machine's cores
        scale=Scale(load=_invoke("slow")),
    )


class ReferenceCluster(Cluster):
    """N reference nodes behind HAProxy, with Redis and Toxiproxy, however they are run."""

    def __init__(self, nodes: int = 3, mutant: Mutant | None = None, access_logs: bool = False) -> None:
        """`access_logs`: nodes log every HTTP answer with its wall time (`served_times`)."""
        if nodes < 1:
            raise HarnessError(f"--nodes must be at least 1, not {nodes}")
        self.mutant = mutant
        self.access_logs = access_logs
        self.warnings = []  # ours: a node out of rotation raises (wait_in_rotation is strict)
        self.run: Run | None = Run.acquire(busy=self._slot_busy)
        self.count = 0
        self.initial_nodes = nodes
        self.paused: set[str] = set()
        self._nodes: list[NodeSpec] = []
        try:
            self.layout = self._make_layout()
            self._start(nodes)
        except BaseException:
            self.close()
            raise

    # -- what a backend provides ------------------------------------------------------------

    def _slot_busy(self, slot: int) -> bool:
        """Is the slot taken by something the run's lock cannot see (another state root)?"""
        return False

    @abstractmethod
    def _make_layout(self) -> Layout: ...

    @abstractmethod
    def _start_services(self) -> None:
        """Start the two Redis servers and the Toxiproxy server, and wait until they answer."""

    @abstractmethod
    def _start_lb(self) -> None:
        """Start HAProxy on `self._lb_path` and wait until it answers."""

    @abstractmethod
    def _reload_lb(self) -> None:
        """Make the running HAProxy load `self._lb_path` again (hitless)."""

    @abstractmethod
    def _launch_node(self, node_id: str, settings: Path) -> None:
        """Start the node's server process with its settings file (not waiting for it)."""

    @abstractmethod
    def _node_alive(self, node_id: str) -> bool: ...

    @abstractmethod
    def _node_failure(self, node_id: str) -> str:
        """Why the node stopped during start-up, from its log."""

    @abstractmethod
    def _stop_node(self, node_id: str) -> None:
        """Stop the node gracefully (it may be paused)."""

    @abstractmethod
    def _release(self) -> None:
        """Stop and remove every role (the run slot is released by `close`)."""

    # -- start-up ---------------------------------------------------------------------------

    @property
    def directory(self) -> Path:
        assert self.run is not None, "the cluster is closed"
        return self.run.directory

    def _start(self, nodes: int) -> None:
        self.ca = RunCA(self.directory)
        lay = self.layout
        self.toxiproxy = ToxiproxyApi(*lay.toxiproxy)
        self.lb = LbSettings(lay.lb, LB_HTTP, LB_HTTPS, self.ca.issue_combined("lb", lay.lb),
                             self.ca.ca_file)
        self.topology = Topology(
            name=f"reference-{self.backend}-{self.run.slot if self.run else 0}",
            nodes=[NodeSpec(id="placeholder", endpoints=Endpoints())],
            entry=Endpoints(http=f"http://{lay.lb}:{LB_HTTP}", https=f"https://{lay.lb}:{LB_HTTPS}",
                            ftp=f"ftp://{lay.lb}:{self.lb.ftp_entry_port}"
                            if self.mutant and self.mutant.name in FTP_ENTRY else None),
            tls=Tls(ca_file=self.ca.ca_file), toxiproxy=self.toxiproxy.url,
            evidence=reference_evidence(lay.backend))
        self._start_services()
        self._launch_and_wait([self._prepare_node() for _ in range(nodes)])
        self._write_lb_config()
        self._start_lb()
        self.wait_in_rotation()

    def _prepare_node(self) -> NodeSettings:
        """Proxies, certificate and settings for the next node; returns its settings."""
        self.count += 1
        i, node_id, lay = self.count, f"node{self.count}", self.layout
        own = lay.node(i)
        api = self.require_toxiproxy()
        for link in LINKS:
            upstream = f"{own}:{NODE_PORTS[link]}"
            if self.mutant and self.mutant.name == f"{link}_fronted":
                upstream = f"{lay.lb}:{fronted_port(self.lb, link, i - 1)}"
            api.create_proxy(f"{node_id}-{link}", upstream, lay.proxy_bind(i, link))
        api.create_proxy(f"{node_id}-redis", "%s:%d" % lay.store, lay.proxy_bind(i, "redis"))
        public = {link: lay.public(i, link) for link in LINKS}
        # the balancer's address too: balancing HTTPS at layer 4, it passes the node's
        # certificate through to clients that connected to the entry
        cert = self.ca.issue(node_id, own, lay.lb, *sorted({h for h, _ in public.values()}))
        redir = self.directory / f"{node_id}-redir.cnf"
        admin_redirected = bool(self.mutant and self.mutant.name == "admin_redirected")
        redir.write_text(render_redir_cnf([] if admin_redirected else REDIR_EXCLUSIONS))
        store_link = lay.public(i, "redis")
        settings = NodeSettings(
            node_id=node_id, host=own,
            http_port=NODE_PORTS["http"], https_port=NODE_PORTS["https"],
            ftp_port=NODE_PORTS["ftp"], smtp_port=NODE_PORTS["smtp"],
            advertise_http="http://%s:%d" % public["http"],
            advertise_https="https://%s:%d" % public["https"],
            redis_url="redis://%s:%d/0" % store_link,
            backend_url="redis://%s:%d/0" % lay.backend,
            pool_size=POOL_SIZE, tls_cert=cert.cert, tls_key=cert.key, redir_cnf=redir,
            mutants=node_mutants(self.mutant, i - 1, self.initial_nodes),
            access_log=self._served_log(node_id) if self.access_logs else None,
        )
        settings.write(self._settings_path(node_id))
        self._nodes.append(NodeSpec(id=node_id, endpoints=Endpoints(
            **{link: "%s://%s:%d" % (link, *public[link]) for link in LINKS})))
        self.topology = self.topology.model_copy(update={"nodes": list(self._nodes)})
        return settings

    def _served_log(self, node_id: str) -> Path:
        return self.directory / f"{node_id}-served.log"

    def served_times(self, node_id: str) -> list[float]:
        """Wall times of the node's HTTP answers (with `access_logs`), across restarts."""
        path = self._served_log(node_id)
        return [float(line.split()[0]) for line in path.read_text().splitlines()] if path.exists() else []

    def _settings_path(self, node_id: str) -> Path:
        return self.directory / f"{node_id}.json"

    def _index(self, node_id: str) -> int:
        return int(node_id.removeprefix("node"))

    @abstractmethod
    def _kernel_place(self, node_id: str) -> tuple[Place, str]:
        """Where kernel fault commands for the node run, and its outgoing device there."""

    def kernel_scope(self, node: str, link: str) -> Scope:
        """A node's own listener (the port behind its Toxiproxy proxy), its link to the
        shared store ("redis": the store address the node connects to), or, for a partition,
        its peer: the balancer's side (ENTRY) or another node."""
        self.topology.node(node)
        i = self._index(node)
        place, device = self._kernel_place(node)
        if link == ENTRY or link in self.node_ids:
            if place.local and not place.prefix:
                raise NoScope(reason="a partition needs nodes in network namespaces of their own "
                                     "(the docker backend; here all share this host's loopback)")
            # the balancer reaches the nodes through the Toxiproxy server: that is its side
            peer = self.layout.toxiproxy[0] if link == ENTRY else self.layout.node(self._index(link))
            return Scope(place, 0, peer, "peer", device)
        if link == "redis":
            host, port = self.layout.public(i, "redis")
            return Scope(place, port, host, "client", device)
        if link not in NODE_PORTS:
            raise HarnessError(f"a node has no {link!r} link (its links: {', '.join(NODE_PORTS)}, redis)")
        return Scope(place, NODE_PORTS[link], self.layout.node(i), "listener", device)

    def _launch_and_wait(self, nodes: list[NodeSettings]) -> None:
        for s in nodes:
            self._launch_node(s.node_id, self._settings_path(s.node_id))
        with ThreadPoolExecutor(len(nodes)) as pool:
            list(pool.map(self._wait_node, [s.node_id for s in nodes]))

    def _wait_node(self, node_id: str) -> None:
        """Wait until every listener of the node accepts; fail fast if it died."""
        host = self.layout.node(self._index(node_id))

        def died() -> str | None:
            return None if self._node_alive(node_id) else self._node_failure(node_id)

        for port in NODE_PORTS.values():
            wait_for_port(host, port, START_TIMEOUT_S, node_id, died)

    @property
    def _lb_path(self) -> Path:
        return self.directory / "haproxy.cfg"

    def _servers(self) -> list[Server]:
        def target(i: int, link: str) -> Address:
            # the balancer reaches nodes through their proxies; under the fronted mutants
            # it must reach their own FTP/SMTP listeners, or it would loop through itself
            if link in ("ftp", "smtp"):
                return self.layout.node(i), NODE_PORTS[link]
            return self.layout.public(i, link)

        return [Server(n.id, *(target(i, link) for link in LINKS))
                for i, n in enumerate(self._nodes, start=1)]

    def _write_lb_config(self) -> None:
        self._lb_path.write_text(haproxy_config(self.lb, self._servers(),
                                                self.mutant.name if self.mutant else None))

    # -- node control -----------------------------------------------------------------------

    def restart(self, node: str) -> None:
        self.topology.node(node)
        if self._node_alive(node):
            self._stop_node(node)
        self.paused.discard(node)
        self._launch_node(node, self._settings_path(node))
        self._wait_node(node)

    def add_node(self) -> str:
        settings = self._prepare_node()
        self._launch_and_wait([settings])
        if not (self.mutant and self.mutant.name == "lb_ignores_new_nodes"):
            self._write_lb_config()
            self._reload_lb()
        return settings.node_id

    def remove_node(self, node: str) -> None:
        """Take a node out: stop it, drop its proxies, and reload the balancer without it."""
        self.topology.node(node)
        if self._node_alive(node):
            self._stop_node(node)
        self.paused.discard(node)
        api = self.require_toxiproxy()
        for link in (*LINKS, "redis"):
            api.delete_proxy(self.proxy_name(node, link))
        self._nodes = [n for n in self._nodes if n.id != node]
        self.topology = self.topology.model_copy(update={"nodes": list(self._nodes)})
        self._write_lb_config()
        self._reload_lb()

    def make_unavailable(self, node: str) -> None:
        self._maintenance(node, True)

    def make_available(self, node: str) -> None:
        self._maintenance(node, False)

    def _maintenance(self, node: str, on: bool) -> None:
        """The node's switch, at its own listener (not through a fault proxy)."""
        host = self.layout.node(self._index(self.topology.node(node).id))
        url = f"http://{host}:{NODE_PORTS['http']}/invoke/wm.art.admin:maintenance"
        try:
            requests.get(url, params={"enable": str(on).lower()}, timeout=2).raise_for_status()
        except requests.RequestException as e:
            raise HarnessError(f"{node}'s maintenance switch did not answer ({e})") from None

    def reset(self) -> None:
        self.require_toxiproxy().reset()
        for node in self.node_ids:
            if node in self.paused:
                self.resume(node)
            if not self._node_alive(node):
                self.restart(node)
            host = self.layout.node(self._index(node))
            requests.post(f"http://{host}:{NODE_PORTS['http']}/_harness/reset", timeout=2)
        self.wait_in_rotation()

    # -- observation ------------------------------------------------------------------------

    def lb_config(self) -> str:
        return self._lb_path.read_text() if self.run and self._lb_path.exists() else ""

    def close(self) -> None:
        if self.run is None:
            return
        try:
            self._release()
        finally:
            self.run.release()
            self.run = None
