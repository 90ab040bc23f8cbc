"""The fault injector and the network engines: faults applied, always healed, and recorded.

The nemesis of the harness. `FaultInjector.inject` takes a `harness.fault_kinds.Fault` and is a
context manager: entering injects it, leaving heals it (in a `finally`), and the moments in
between go to the fault timeline (`harness.history.timeline`), so checks can tell what was in
force when. Node faults go to the cluster's own control (kill, pause, restart); network
faults to a `NetworkEngine`: a Toxiproxy proxy in front of the node's link, or kernel rules
scoped to its address and port.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import replace
from typing import Any, Protocol

import requests

from harness.errors import HarnessError
from harness.fault_kinds import KINDS, Fault, by_toxiproxy
from harness.history.timeline import FaultEvent, FaultKind, FaultTimeline
from harness.kernel import KernelFaults, NoScope, Scope
from harness.toxiproxy import ToxiproxyApi


class Controlled(Protocol):
    """What the injector and the engines need of a cluster (`harness.cluster.Cluster`)."""

    toxiproxy: ToxiproxyApi | None

    @property
    def node_ids(self) -> list[str]: ...

    def kill(self, node: str) -> None: ...

    def pause(self, node: str) -> None: ...

    def resume(self, node: str) -> None: ...

    def restart(self, node: str) -> None: ...

    def make_unavailable(self, node: str) -> None: ...

    def make_available(self, node: str) -> None: ...

    def require_toxiproxy(self) -> ToxiproxyApi: ...

    def proxy_name(self, node: str, link: str) -> str: ...

    def kernel_scope(self, node: str, link: str) -> Scope: ...


# Node faults as the cluster's action that applies each and the one that heals it.
TOGGLED = {FaultKind.KILL: ("kill", "restart"), FaultKind.PAUSE: ("pause", "resume"),
           FaultKind.UNAVAILABLE: ("make_unavailable", "make_available")}


class FaultInjector:
    """Injects faults into a cluster, heals them, and records them on its timeline."""

    def __init__(self, cluster: Controlled, timeline: FaultTimeline | None = None) -> None:
        self.cluster = cluster
        self.timeline = timeline if timeline is not None else FaultTimeline()

    def in_force(self) -> set[str]:
        """The nodes under a fault of this injector's now (begun and not yet healed)."""
        return {e.node for e in self.timeline.events if e.end_mono is None}

    @contextmanager
    def _recorded(self, fault: Fault, **detail: Any) -> Iterator[FaultEvent]:
        event = self.timeline.begin(fault.kind, fault.node, fault.link, **detail)
        try:
            yield event
        finally:
            self.timeline.end(event)

    def inject(self, fault: Fault, network: NetworkEngine | None = None
               ) -> AbstractContextManager[FaultEvent]:
        """`fault` in force for the body of the `with`; a network fault by `network`."""
        if fault.kind in TOGGLED:
            return self._toggled(fault)
        if fault.kind == FaultKind.RESTART:
            return self._restart(fault)
        assert network is not None and fault.link is not None, f"{fault} needs a network engine and a link"
        return self._network(fault, network.engine_for(fault.kind))

    @contextmanager
    def _toggled(self, fault: Fault) -> Iterator[FaultEvent]:
        """A node fault one of the cluster's actions applies and another heals (`TOGGLED`):
        a kill (SIGKILL, docker kill) restarted on the way out; a pause (SIGSTOP, docker
        pause: the node holds connections, answers nothing) resumed; the maintenance switch
        (up and reachable, the node answers 503 to everything) turned off again."""
        apply, heal = (getattr(self.cluster, action) for action in TOGGLED[fault.kind])
        with self._recorded(fault) as event:
            try:
                apply(fault.node)
                event.mark_applied()
                yield event
            finally:
                event.mark_healing()
                heal(fault.node)

    @contextmanager
    def _restart(self, fault: Fault) -> Iterator[FaultEvent]:
        """Stop the node and start it again (the backend's restart: graceful where it has
        one); the fault lasts as long as the node takes, the body runs once it is back.

        When within the restart the node stopped and when it began to serve again is the
        backend's secret, so no moment is marked as surely down (applied = healing): checks
        judge the errors, gaps and latency of the whole window, not answers "while down"."""
        with self._recorded(fault) as event:
            event.mark_applied()
            event.mark_healing()
            self.cluster.restart(fault.node)
            yield event

    @contextmanager
    def _network(self, fault: Fault, engine: NetworkEngine) -> Iterator[FaultEvent]:
        assert fault.link is not None
        with self._recorded(fault, engine=engine.name, **fault.options) as event:
            with engine.applied(fault.kind, fault.node, fault.link, **fault.options) as how:
                event.detail["applied"] = how
                event.mark_applied()
                try:
                    yield event
                finally:
                    event.mark_healing()

    @contextmanager
    def by_commands(self, fault: Fault, cut: Callable[[], None],
                    heal: Callable[[], None]) -> Iterator[FaultEvent]:
        """A fault the operator's own commands inject and heal (e.g. a node's store link)."""
        with self._recorded(fault, by="commands") as event:
            cut()
            event.mark_applied()
            try:
                yield event
            finally:
                event.mark_healing()
                heal()


class NetworkEngine(Protocol):
    """What injects network faults: Toxiproxy proxies, or kernel rules (`--network-faults`)."""

    name: str

    def engine_for(self, kind: FaultKind) -> "NetworkEngine":
        """The engine that injects `kind` (itself, but for `AutoNetwork`)."""

    def missing(self, kind: FaultKind, link: str) -> str | None:
        """Why `kind` cannot be injected on a node's `link` here (a skip reason), or None."""

    def applied(self, kind: FaultKind, node: str, link: str, **attributes: Any) -> AbstractContextManager[list[str]]:
        """The fault in force for the body; yields what was done, for the report."""


class ToxiproxyNetwork:
    """Faults on the Toxiproxy proxy in front of a node's link (`<node>-<link>`): a cut
    disables the proxy, anything else is a toxic of that type."""

    name = "toxiproxy"

    def __init__(self, cluster: Controlled) -> None:
        self.cluster = cluster

    def engine_for(self, kind: FaultKind) -> NetworkEngine:
        return self

    def missing(self, kind: FaultKind, link: str) -> str | None:
        if self.cluster.toxiproxy is None:
            return "needs `toxiproxy` in the topology"
        return None if kind == FaultKind.CUT or KINDS[kind].toxic else f"Toxiproxy has no {kind} toxic"

    @contextmanager
    def applied(self, kind: FaultKind, node: str, link: str, **attributes: Any) -> Iterator[list[str]]:
        api, proxy = self.cluster.require_toxiproxy(), self.cluster.proxy_name(node, link)
        if kind == FaultKind.CUT:
            api.set_enabled(proxy, False)
            try:
                yield [f"proxy {proxy} disabled"]
            finally:
                api.set_enabled(proxy, True)
            return
        stream = attributes.pop("stream", "downstream")
        name = f"harness_{kind}_{stream}"
        api.add_toxic(proxy, name, kind, stream, attributes)
        try:
            yield [f"toxic {kind} ({stream}) on proxy {proxy}"]
        finally:
            api.remove_toxic(proxy, name)


class KernelNetwork:
    """Faults as kernel rules at the scope the cluster gives for a node's link."""

    name = "kernel"

    def __init__(self, cluster: Controlled, engine: KernelFaults) -> None:
        self.cluster, self.engine = cluster, engine

    def engine_for(self, kind: FaultKind) -> NetworkEngine:
        return self

    def scope(self, node: str, link: str) -> Scope:
        """Where the rules for a node's link go."""
        return self.cluster.kernel_scope(node, link)

    def missing(self, kind: FaultKind, link: str) -> str | None:
        try:
            scope = self.scope(self.cluster.node_ids[0], link)
        except NoScope as e:
            return e.reason
        if KINDS[kind].kernel not in (None, "iptables") and scope.device is None:
            return f"needs `{scope.device_field}` in the topology for a kernel {kind} fault"
        return self.engine.missing(kind, scope.place)

    @contextmanager
    def applied(self, kind: FaultKind, node: str, link: str, **attributes: Any) -> Iterator[list[str]]:
        attributes.pop("stream", None)
        with self.engine.applied(kind, self.scope(node, link), **attributes) as commands:
            yield commands


class ProxiedKernelNetwork(KernelNetwork):
    """Kernel rules on a link a Toxiproxy proxy carries: at the proxy's upstream, the port
    the balancer's traffic reaches the node on. That need not be the node's endpoint: Apache
    reaches Tomcat by AJP through the proxy, and a rule on the HTTP endpoint would leave the
    balancer's traffic alone (packet loss "survived" on a link nothing used)."""

    def scope(self, node: str, link: str) -> Scope:
        scope = super().scope(node, link)
        api = self.cluster.toxiproxy
        if api is None or scope.role != "listener":
            return scope
        try:
            upstream = api.proxy(self.cluster.proxy_name(node, link)).upstream
        except (HarnessError, requests.RequestException):
            return scope  # no proxy for this link: the endpoint is the link
        return at_upstream(scope, upstream)


def at_upstream(scope: Scope, upstream: str) -> Scope:
    """A listener's scope moved to a proxy's `upstream` (host:port): its port, and its
    address where the scope names one and the upstream gives an IP literal (a host name is
    left to the scope's address: iptables would resolve it once, here, not where the proxy
    does)."""
    host, _, port = upstream.rpartition(":")
    host = host.strip("[]")
    try:
        ipaddress.ip_address(host)
    except ValueError:
        host = ""
    return replace(scope, port=int(port), address=host if host and scope.address is not None else scope.address)


class AutoNetwork:
    """`--network-faults auto` beside a Toxiproxy server: its proxies for every kind they
    have, kernel rules for the kinds only the kernel has (packet loss), where the cluster
    says where they go. Each fault is reported by the engine that applied it."""

    name = "toxiproxy"

    def __init__(self, toxiproxy: ToxiproxyNetwork, kernel: ProxiedKernelNetwork) -> None:
        self.toxiproxy, self.kernel = toxiproxy, kernel

    def engine_for(self, kind: FaultKind) -> NetworkEngine:
        return self.toxiproxy if by_toxiproxy(kind) else self.kernel

    def missing(self, kind: FaultKind, link: str) -> str | None:
        return self.engine_for(kind).missing(kind, link)

    def applied(self, kind: FaultKind, node: str, link: str, **attributes: Any) -> AbstractContextManager[list[str]]:
        return self.engine_for(kind).applied(kind, node, link, **attributes)


def network_engine(cluster: Controlled, choice: str, kernel: KernelFaults | None = None) -> NetworkEngine:
    """`--network-faults`: toxiproxy, kernel, or auto (Toxiproxy where the cluster has it,
    the kernel for what Toxiproxy has no toxic for)."""
    if choice == "toxiproxy":
        return ToxiproxyNetwork(cluster)
    if choice == "auto" and cluster.toxiproxy is not None:
        return AutoNetwork(ToxiproxyNetwork(cluster), ProxiedKernelNetwork(cluster, kernel or KernelFaults.shared()))
    return KernelNetwork(cluster, kernel or KernelFaults.shared())
