"""Faults as values, applied by one injector that always heals, and the timeline they leave.

Every fault is a context manager: entering injects it, leaving heals it (in a `finally`), and
both moments go to the `FaultTimeline` with wall-clock and monotonic times. Checks read the
timeline beside the request log, so "errors inside the fault window" is well defined.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

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
    def link_down(self, node: str, link: str = "http") -> Iterator[FaultEvent]:
        """Cut one of a node's links (a Toxiproxy proxy disabled): connections drop."""
        proxy = self.cluster.proxy_name(node, link)
        api = self.cluster.require_toxiproxy()
        with self._recorded("down", f"{node}/{link}") as event:
            try:
                api.set_enabled(proxy, False)
                event.mark_applied()
                yield event
            finally:
                event.mark_healing()
                api.set_enabled(proxy, True)

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

    @contextmanager
    def toxic(self, node: str, toxic_type: str, link: str = "http", stream: str = "downstream",
              **attributes: Any) -> Iterator[FaultEvent]:
        """Add a Toxiproxy toxic (latency, timeout, reset_peer, ...) to one of a node's links."""
        proxy = self.cluster.proxy_name(node, link)
        api = self.cluster.require_toxiproxy()
        name = f"harness_{toxic_type}_{stream}"
        with self._recorded(toxic_type, f"{node}/{link}", stream=stream, **attributes) as event:
            api.add_toxic(proxy, name, toxic_type, stream, attributes)
            event.mark_applied()
            try:
                yield event
            finally:
                event.mark_healing()
                api.remove_toxic(proxy, name)
