"""Another machine's clock on the controller's timeline: the offset, and how well it is known.

A load worker on another machine stamps its requests with its own monotonic clock, which
counts from that machine's boot (or from wherever its time namespace says): its times are not
the controller's, and a check must never compare them raw with the fault timeline. So the
controller measures each worker's offset the way NTP does: it sends its time `t0`, the worker
answers with its own time `tw` on receipt, the answer arrives at `t1`. Assuming the two legs
took equally long, the worker read `tw` at the controller's `(t0 + t1) / 2`, so

    offset = tw - (t0 + t1) / 2,    known to within  bound = (t1 - t0) / 2

whatever the legs really took. Of several exchanges the one with the shortest round trip has
the tightest bound. The offset is measured when the load starts and again when it ends; a
worker's records are placed with the first, so their times are off by at most both bounds
plus how far the offset seemed to move (`drift`) in between.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class Exchange:
    """One round trip: the controller's send and receive times, the worker's in between."""

    sent: float
    worker: float
    received: float


@dataclass(frozen=True)
class Offset:
    """A worker clock's offset from the controller's (worker time - controller time)."""

    offset_s: float
    bound_s: float

    def to_controller(self, worker_time: float) -> float:
        return worker_time - self.offset_s


def estimate(exchanges: Iterable[Exchange]) -> Offset:
    """The offset by the exchange with the shortest round trip (ValueError without any)."""
    best = min(exchanges, key=lambda e: e.received - e.sent)
    return Offset(best.worker - (best.sent + best.received) / 2, (best.received - best.sent) / 2)


@dataclass(frozen=True)
class WorkerClock:
    """A worker's clock as measured at the load's start and end."""

    worker: str
    start: Offset
    end: Offset | None = None

    @property
    def drift_s(self) -> float | None:
        return None if self.end is None else abs(self.end.offset_s - self.start.offset_s)

    @property
    def error_s(self) -> float | None:
        """How far a record's time placed with the start's offset may be from the truth
        (None: the end was not measured, so nothing bounds it)."""
        if self.end is None:
            return None
        return self.start.bound_s + self.end.bound_s + abs(self.end.offset_s - self.start.offset_s)
