"""The fault timeline: one typed event per fault, with wall-clock and monotonic times.

Checks read it beside the request log, so "the requests inside a fault's window" is well
defined. An event names its kind (`FaultKind`), the node and, for a network fault, the link
it hit, so nothing has to split a "node/link" string again.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from harness.history.requests import ENTRY




class FaultKind(StrEnum):
    """Every kind of fault the harness injects (what each is, its attributes and which
    engine injects it: `harness.fault_kinds`)."""

    KILL = "kill"
    PAUSE = "pause"
    RESTART = "restart"
    CUT = "cut"
    LATENCY = "latency"
    TIMEOUT = "timeout"
    RESET_PEER = "reset_peer"
    BANDWIDTH = "bandwidth"
    SLICER = "slicer"
    LIMIT_DATA = "limit_data"
    LOSS = "loss"
    UNAVAILABLE = "unavailable"
    PARTITION = "partition"

    @property
    def takes_the_node(self) -> bool:
        """A node fault: the whole node goes away, every protocol's traffic to it fails."""
        return self in (FaultKind.KILL, FaultKind.PAUSE, FaultKind.RESTART)


@dataclass
class FaultEvent:
    kind: FaultKind
    node: str
    link: str | None
    """the node's link a network fault hit (a protocol, or its link to the store), or the peer
    a partition cut it from (ENTRY: the balancer's host; else a node id); None for a node fault"""
    start_wall: float
    start_mono: float
    end_wall: float | None = None
    end_mono: float | None = None
    detail: dict[str, Any] = field(default_factory=dict)
    applied_mono: float | None = None
    """when the injection returned (a `docker pause` takes a while); `start_mono` is before it"""
    healing_mono: float | None = None
    """when the healing began; `end_mono` is after it returned"""

    @property
    def target(self) -> str:
        """What it hit, for people: `node1`, `node1/http`, or, for a partition, `node1 from
        entry` (from the balancer's host) or `node1 from node2`."""
        if self.kind == FaultKind.PARTITION:
            return f"{self.node} from {self.link}"
        return f"{self.node}/{self.link}" if self.link else self.node

    @property
    def unreachable(self) -> bool:
        """Did it take the node away from clients: a node fault, or a cut of a client link
        (one cut off from the store may rightly answer what it can)."""
        return self.kind.takes_the_node or (self.kind == FaultKind.CUT and self.link in ("http", "https")) \
            or (self.kind == FaultKind.PARTITION and self.link == ENTRY)

    @property
    def in_force(self) -> tuple[float, float]:
        """The monotonic times between which the fault held for certain: from the injection's
        return to the healing's start (each falling back to the bracket's edge where it was not
        marked). A request started inside failed because of the fault; outside, not surely."""
        assert self.end_mono is not None, "the fault must be healed before it is judged"
        applied = self.applied_mono if self.applied_mono is not None else self.start_mono
        healing = self.healing_mono if self.healing_mono is not None else self.end_mono
        return applied, healing

    def mark_applied(self) -> None:
        self.applied_mono = time.monotonic()

    def mark_healing(self) -> None:
        self.healing_mono = time.monotonic()


@dataclass
class FaultTimeline:
    events: list[FaultEvent] = field(default_factory=list)

    def begin(self, kind: FaultKind, node: str, link: str | None = None, **detail: Any) -> FaultEvent:
        event = FaultEvent(FaultKind(kind), node, link, time.time(), time.monotonic(), detail=detail)
        self.events.append(event)
        return event

    @staticmethod
    def end(event: FaultEvent) -> None:
        event.end_wall, event.end_mono = time.time(), time.monotonic()

    def write(self, path: Path) -> None:
        path.write_text("".join(json.dumps(asdict(e)) + "\n" for e in self.events))
