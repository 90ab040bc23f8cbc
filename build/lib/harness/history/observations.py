"""Readings of what client traffic cannot show, as records: the third strand of the history.

A check that polled the cluster itself could not be replayed from the record. So what a
scenario reads of the cluster while it runs (a node's connections counted at the back end,
the package version a node reports) is written down as an `Observation`, with the moment it
was taken and the round of readings it belongs to, and the check judges the observations.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Observation:
    what: str
    """what was read, e.g. "pool connections" or "package version\""""
    node: str
    value: object
    at_mono: float
    sample: int = 0
    """the round of readings it was taken in: one round reads every node once"""
    error: str | None = None
    """the reading failed (a back end too full to answer is evidence too)"""


@dataclass
class ObservationLog:
    observations: list[Observation] = field(default_factory=list)
    _samples: int = 0

    def new_sample(self) -> int:
        self._samples += 1
        return self._samples

    def add(self, what: str, node: str, value: object, sample: int = 0,
            error: str | None = None) -> Observation:
        observation = Observation(what, node, value, time.monotonic(), sample, error)
        self.observations.append(observation)
        return observation

    def of(self, what: str) -> list[Observation]:
        return [o for o in self.observations if o.what == what]

    def __iter__(self) -> Iterator[Observation]:
        return iter(self.observations)
