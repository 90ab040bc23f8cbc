"""Faults as values, applied by one injector that always heals, and the timeline they leave.

Every fault is a context manager: entering injects it, leaving heals it (in a `finally`), and
both moments go to the `FaultTimeline` with wall-clock and monotonic times. Checks read the
timeline beside the request log, so "errors inside the fault window" is well defined.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from harness.cluster.toxiproxy import TOXIC_TYPES
from harness.kernel import KERNEL_FAULTS, KernelFaults, NoScope

if TYPE_CHECKING:
    from harness.cluster.base import Cluster


@dataclass
class FaultEvent:
    kind: str
    target: str
    start_wall: float
    start_mono: float
    end_wall: float | None = None
    end_mono: float | None = None
    detail: dict[str, Any] = field(default_factory=dict)
    # The fault is in force between these two: after the injection returned (a `docker pause`
    # takes a while) and before the healing began. `start`/`end` bracket both actions.
    applied_mono: float | None = None
    healing_mono: float | None = None

    def mark_applied(self) -> None:
        self.applied_mono = time.monotonic()

    def mark_healing(self) -> None:
        self.healing_mono = time.monotonic()

    def covers(self, mono: float) -> bool:
        end = self.end_mono if self.end_mono is not None else float("inf")
        return self.start_mono <= mono <= end


@dataclass
class FaultTimeline:
    events: list[FaultEvent] = field(default_factory=list)

    def begin(self, kind: str, target: str, **detail: Any) -> FaultEvent:
        event = FaultEvent(kind, target, time.time(), time.monotonic(), detail=detail)
        self.events.append(event)
        return event

    @staticmethod
    def end(event: FaultEvent) -> None:
        event.end_wall, event.end_mono = time.time(), time.monotonic()

    def write(self, path: Path) -> None:
        path.write_text("".join(json.dumps(asdict(e)) + "\n" for e in self.events))

    @classmethod
    def read(cls, path: Path) -> "FaultTimeline":
        return cls([FaultEvent(**json.loads(line)) for line in path.read_text().splitlines() if line])


class FaultInjector:
    """The nemesis: injects faults into a cluster and records them."""

    def __init__(self, cluster: Cluster, timeline: FaultTimeline | None = None) -> None:
        self.cluster = cluster
        self.timeline = timeline if timeline is not None else FaultTimeline()

    @contextmanager
    def _recorded(self, kind: str, target: str, **detail: Any) -> Iterator[FaultEvent]:
        event = self.timeline.begin(kind, target, **detail)
        try:
            yield event
        finally:
            self.timeline.end(event)

    @contextmanager
    def kill(self, node: str, restart: bool = True) -> Iterator[FaultEvent]:
        """SIGKILL (or docker kill) a node; restart it on the way out unless told not to."""
        with self._recorded("kill", node) as event:
            try:
                self.cluster.kill(node)
                event.mark_applied()
                yield event
            finally:
                event.mark_healing()
                if restart:
                    self.cluster.restart(node)

    @contextmanager
    def pause(self, node: str) -> Iterator[FaultEvent]:
        """SIGSTOP (or docker pause) a node: it holds connections but answers nothing."""
        with self._recorded("pause", node) as event:
            try:
                self.cluster.pause(node)
                event.mark_applied()
                yield event
            finally:
                event.mark_healing()
                self.cluster.resume(node)

    @contextmanager
    def restart(self, node: str) -> Iterator[FaultEvent]:
        """Stop a node and start it again (the backend's restart: graceful where it has one);
        the fault lasts as long as the node takes, the body runs once it is back.

        When within the restart the node stopped and when it began to serve again is the
        backend's secret, so no moment is marked as surely down (applied = healing): checks
        judge the errors, gaps and latency of the whole window, not answers "while down"."""
        with self._recorded("restart", node) as event:
            event.mark_applied()
            event.mark_healing()
            self.cluster.restart(node)
            yield event

    @contextmanager
    def network(self, engine: "NetworkEngine", kind: str, node: str, link: str = "http",
                **attributes: Any) -> Iterator[FaultEvent]:
        """A network fault on one of a node's links (`cut`, or a Toxiproxy toxic's name),
        injected by `engine`; a cut is recorded as "down", as checks expect."""
        recorded = "down" if kind == "cut" else kind
        with self._recorded(recorded, f"{node}/{link}", engine=engine.name, **attributes) as event:
            with engine.applied(kind, node, link, **attributes) as how:
                event.detail["applied"] = how
                event.mark_applied()
                try:
                    yield event
                finally:
                    event.mark_healing()

    @contextmanager
    def by_commands(self, node: str, what: str, cut: Callable[[], None],
                    heal: Callable[[], None]) -> Iterator[FaultEvent]:
        """A fault the operator's own commands inject and heal (e.g. a node's store link)."""
        with self._recorded("down", f"{node}/{what}", by="commands") as event:
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

    def missing(self, kind: str, link: str) -> str | None:
        """Why `kind` cannot be injected on a node's `link` here (a skip reason), or None."""

    def applied(self, kind: str, node: str, link: str, **attributes: Any) -> AbstractContextManager[list[str]]:
        """The fault in force for the body; yields what was done, for the report."""


class ToxiproxyNetwork:
    """Faults on the Toxiproxy proxy in front of a node's link (`<node>-<link>`): a cut
    disables the proxy, anything else is a toxic of that type."""

    name = "toxiproxy"

    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster

    def missing(self, kind: str, link: str) -> str | None:
        if self.cluster.toxiproxy is None:
            return "needs `toxiproxy` in the topology"
        return None if kind == "cut" or kind in TOXIC_TYPES else f"Toxiproxy has no {kind} toxic"

    @contextmanager
    def applied(self, kind: str, node: str, link: str, **attributes: Any) -> Iterator[list[str]]:
        api, proxy = self.cluster.require_toxiproxy(), self.cluster.proxy_name(node, link)
        if kind == "cut":
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

    def __init__(self, cluster: Cluster, engine: KernelFaults) -> None:
        self.cluster, self.engine = cluster, engine

    def missing(self, kind: str, link: str) -> str | None:
        try:
            scope = self.cluster.kernel_scope(self.cluster.node_ids[0], link)
        except NoScope as e:
            return f"needs `{e.field}` in the topology for kernel faults"
        if KERNEL_FAULTS.get(kind) and KERNEL_FAULTS[kind].needs != "iptables" and scope.device is None:
            return f"needs `{scope.device_field}` in the topology for a kernel {kind} fault"
        return self.engine.missing(kind, scope.place)

    @contextmanager
    def applied(self, kind: str, node: str, link: str, **attributes: Any) -> Iterator[list[str]]:
        attributes.pop("stream", None)
        with self.engine.applied(kind, self.cluster.kernel_scope(node, link), **attributes) as commands:
            yield commands


def network_engine(cluster: Cluster, choice: str, kernel: KernelFaults | None = None) -> NetworkEngine:
    """`--network-faults`: toxiproxy, kernel, or auto (Toxiproxy where the cluster has it)."""
    if choice == "toxiproxy" or (choice == "auto" and cluster.toxiproxy is not None):
        return ToxiproxyNetwork(cluster)
    return KernelNetwork(cluster, kernel or KernelFaults.shared())
