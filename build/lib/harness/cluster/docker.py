"""The `docker` backend: every role a container (testcontainers) on a network of the run's own.

The run's network is 198.18.<slot>.0/24 (inside the benchmarking range 198.18.0.0/15, never a
private range), with fixed addresses:

    .2      HAProxy (entry: http 8080, https 8443)
    .3      Toxiproxy server (API 8474); node i's proxies on ports 10000 + 100*i + k,
            k = 0..4 for http, https, ftp, smtp and the node's link to the shared store
    .4      Redis, the shared store;  .5  Redis, the pools' back end (connections capped)
    .10+i   node i (http 5555, https 5543, ftp 2121, smtp 2525): a sandbox container holds
            the address, the node's server runs in its network namespace, so a killed node
            refuses connections like a crashed process on a live host

The host reaches these addresses directly over the bridge. The run's directory (settings,
certificates, HAProxy configuration) is mounted at the same path in every container, so the
wiring in `reference` is the same as for local processes. Every container and the network
carry the run's labels; `sweep_stale_containers` removes those of runs whose slot lock is
free (a run killed with SIGKILL), at the start of the next run and on `harness down`.
Testcontainers' own reaper (Ryuk) needs a registry, so it is switched off and this sweep
does its job.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("TESTCONTAINERS_RYUK_DISABLED", "true")

import docker  # noqa: E402
import docker.errors  # noqa: E402
import docker.types  # noqa: E402
from docker.types import EndpointConfig  # noqa: E402
from testcontainers.core.container import DockerContainer  # noqa: E402

from harness.cluster import images  # noqa: E402
from harness.cluster.procs import try_lock, wait_for_port  # noqa: E402
from harness.runstate import STATE_ROOT  # noqa: E402
from harness.cluster.reference import (BACKEND_MAX_CLIENTS, LB_HTTP,  # noqa: E402
                                       REDIS_PORT, TOXIPROXY_ENV, TOXIPROXY_PORT, Address, Layout,
                                       ReferenceCluster)
from harness.errors import HarnessError  # noqa: E402
from harness.kernel import Place, in_namespace_of  # noqa: E402
from harness.mutants import Mutant  # noqa: E402

LABEL = "io.harness.run"
SLOT_LABEL = "io.harness.slot"
ROOT_LABEL = "io.harness.state-root"  # runs with another HARNESS_STATE_DIR are not ours to sweep
PROXY_BASE_PORT = 10000
PROXY_LINKS = ("http", "https", "ftp", "smtp", "redis")
READY_TIMEOUT_S = 15.0


@dataclass(frozen=True)
class NetworkLayout(Layout):
    prefix: str  # "198.18.<slot>."

    @classmethod
    def for_slot(cls, slot: int) -> "NetworkLayout":
        p = f"198.18.{slot}."
        return cls(f"{p}2", (f"{p}3", TOXIPROXY_PORT), (f"{p}4", REDIS_PORT), (f"{p}5", REDIS_PORT), p)

    @property
    def subnet(self) -> str:
        return f"{self.prefix}0/24"

    def node(self, i: int) -> str:
        return f"{self.prefix}{10 + i}"

    def public(self, i: int, link: str) -> Address:
        return self.toxiproxy[0], PROXY_BASE_PORT + 100 * i + PROXY_LINKS.index(link)

    def proxy_bind(self, i: int, link: str) -> str:
        return f"0.0.0.0:{self.public(i, link)[1]}"


class DockerCluster(ReferenceCluster):
    backend = "docker"

    def __init__(self, nodes: int = 3, mutant: Mutant | None = None, access_logs: bool = False) -> None:
        self.client = images.client()
        sweep_stale_containers(self.client)  # what runs killed with SIGKILL left
        super().__init__(nodes, mutant, access_logs)

    def _slot_busy(self, slot: int) -> bool:
        name = _network_name(slot)  # a run with another state root may hold it
        return any(n.name == name for n in self.client.networks.list(names=[name]))

    def _make_layout(self) -> NetworkLayout:
        assert self.run is not None
        self.containers: dict[str, DockerContainer] = {}
        root = self.run.directory.parent
        self.labels = {LABEL: self.run.label, SLOT_LABEL: str(self.run.slot), ROOT_LABEL: str(root)}
        self.network_name = _network_name(self.run.slot)
        self.images = images.ensure_images(self.client)
        layout = NetworkLayout.for_slot(self.run.slot)
        try:
            self.network = self.client.networks.create(
                self.network_name, driver="bridge", labels=self.labels,
                ipam=docker.types.IPAMConfig(pool_configs=[docker.types.IPAMPool(
                    subnet=layout.subnet, gateway=f"{layout.prefix}1")]))
        except docker.errors.APIError as e:
            raise HarnessError(f"cannot create the Docker network {self.network_name} "
                               f"({layout.subnet}): {e.explanation}") from None
        return layout

    # -- containers -------------------------------------------------------------------------

    def _container(self, name: str, role: str, command: list[str], address: str | None = None,
                   env: dict[str, str] | None = None, **kwargs: object) -> DockerContainer:
        """Start a labelled container with the run directory mounted; on the run's network at
        `address`, or sharing another container's network namespace (`network_mode`)."""
        assert self.run is not None
        directory = str(self.directory)
        if address is not None:
            kwargs.update(network=self.network_name, networking_config={self.network_name: EndpointConfig(
                self.client.api.api_version, ipv4_address=address, aliases=[name])})
        container = (
            DockerContainer(self.images[role])
            .with_name(f"harness-{self.run.slot}-{name}")
            .with_command(command)
            .with_volume_mapping(directory, directory, "rw")
            .with_kwargs(labels=self.labels, working_dir=directory, **kwargs))
        for key, value in (env or {}).items():
            container.with_env(key, value)
        container.start()
        self.containers[name] = container
        return container

    def _wrapped(self, name: str):  # type: ignore[no-untyped-def]
        container = self.containers[name].get_wrapped_container()
        container.reload()
        return container

    def _wait_tcp(self, name: str, address: Address) -> None:
        def died() -> str | None:
            return self._log_tail(name) if self._wrapped(name).status == "exited" else None

        wait_for_port(*address, READY_TIMEOUT_S, name, died)

    def _log_tail(self, name: str) -> str:
        return " | ".join(self.node_log(name).strip().splitlines()[-3:])

    # -- the roles --------------------------------------------------------------------------

    def _start_services(self) -> None:
        lay = self.layout
        self._container("redis-store", "redis", [], lay.store[0])
        self._container("redis-backend", "redis", ["--maxclients", str(BACKEND_MAX_CLIENTS)], lay.backend[0])
        self._container("toxiproxy", "toxiproxy", [], lay.toxiproxy[0], env=TOXIPROXY_ENV)
        for name, address in (("toxiproxy", lay.toxiproxy), ("redis-store", lay.store),
                              ("redis-backend", lay.backend)):
            self._wait_tcp(name, address)

    def _start_lb(self) -> None:
        self._container("haproxy", "haproxy", ["-f", str(self._lb_path)], self.layout.lb)
        self._wait_tcp("haproxy", (self.layout.lb, LB_HTTP))

    def _reload_lb(self) -> None:
        self._wrapped("haproxy").kill(signal="SIGUSR2")

    def _launch_node(self, node_id: str, settings: Path) -> None:
        """The node's server in its own container, in the network namespace of a sandbox that
        holds the node's address (as Kubernetes' pause container does). A killed server then
        leaves a host that refuses connections, as a crashed process on a live machine does,
        instead of an address that vanishes from the network (a different fault: a cut link)."""
        if node_id in self.containers:
            self._wrapped(node_id).start()
            return
        sandbox = self._container(f"{node_id}-net", "node", [], self.layout.node(self._index(node_id)),
                                  entrypoint=["sleep", "infinity"])
        self._container(node_id, "node", ["--config", str(settings)],
                        network_mode=f"container:{sandbox.get_wrapped_container().id}")

    def _node_alive(self, node_id: str) -> bool:
        return node_id in self.containers and self._wrapped(node_id).status in ("running", "paused")

    def _node_failure(self, node_id: str) -> str:
        return self._log_tail(node_id)

    def _stop_node(self, node_id: str) -> None:
        container = self._wrapped(node_id)
        if container.status == "paused":
            container.unpause()
        container.stop(timeout=3)

    def _release(self) -> None:
        for container in self.containers.values():
            with contextlib.suppress(docker.errors.DockerException):
                container.stop()
        with contextlib.suppress(docker.errors.DockerException, AttributeError):
            self.network.remove()

    def _kernel_place(self, node_id: str) -> tuple[Place, str]:
        """The namespace of the node's sandbox, which holds its address (see `_launch_node`)."""
        sandbox = self._wrapped(f"{node_id}-net")
        return in_namespace_of(sandbox.attrs["State"]["Pid"], f"container {sandbox.name}"), "eth0"

    # -- node control -----------------------------------------------------------------------

    def _node(self, node: str):  # type: ignore[no-untyped-def]
        self.topology.node(node)
        return self._wrapped(node)

    def kill(self, node: str) -> None:
        container = self._node(node)
        if container.status == "paused":
            container.unpause()
        container.kill()
        container.wait(timeout=10)
        self.paused.discard(node)

    def pause(self, node: str) -> None:
        self._node(node).pause()
        self.paused.add(node)

    def resume(self, node: str) -> None:
        self._node(node).unpause()
        self.paused.discard(node)

    def node_log(self, node: str) -> str:
        if node not in self.containers:
            return ""
        try:
            return self._wrapped(node).logs().decode(errors="replace")
        except docker.errors.DockerException:
            return ""


def _network_name(slot: int) -> str:
    return f"harness-{slot}"


def sweep_stale_containers(client: docker.DockerClient | None = None, root: Path = STATE_ROOT) -> int:
    """Remove labelled containers and networks of runs that are gone; returns how many.

    A run is gone when its slot's lock under `root` is free.
    """
    mine = f"{ROOT_LABEL}={root}"
    try:
        client = client or docker.from_env(timeout=30)
        containers = client.containers.list(all=True, filters={"label": [LABEL, mine]})
        networks = client.networks.list(filters={"label": [LABEL, mine]})
    except docker.errors.DockerException:
        return 0
    def slot_of(labels: dict[str, str] | None) -> str:
        return (labels or {}).get(SLOT_LABEL, "")

    slots = {slot_of(c.labels) for c in containers} | {slot_of(n.attrs.get("Labels")) for n in networks}
    gone = {s for s in slots if _slot_free(root, s)}
    removed = 0
    for c in containers:
        if slot_of(c.labels) in gone:
            with contextlib.suppress(docker.errors.DockerException):
                c.remove(force=True)
                removed += 1
    for n in networks:
        if slot_of(n.attrs.get("Labels")) in gone:
            with contextlib.suppress(docker.errors.DockerException):
                n.remove()
                removed += 1
    return removed


def _slot_free(root: Path, slot: str) -> bool:
    lock = try_lock(root / f"slot-{slot}" / "lock")
    if lock is None:
        return False
    lock.close()
    return True
