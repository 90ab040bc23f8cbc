"""The soak's nemesis schedule: which fault hits which node when, drawn from a seed.

Jepsen's nemesis generators interleave faults with traffic at random; a run that found a
violation is only useful if it can be run again the same way. So the schedule is a pure
function of (seed, nemesis kinds, nodes, duration, fault and quiet lengths, policy): the
same seed gives the same faults at the same offsets on the same nodes, whatever the cluster
does meanwhile. `harness soak --dry-run` prints it without touching a cluster.

Policies: `serial` (one fault at a time, each followed by a quiet period in which the cluster
must recover and balance) and `overlap` (faults start at random times and may overlap, never
two on the same node and never on more nodes at once than the blast radius allows, at most
all but one, so one node is always left to serve).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Literal

from harness.fault_kinds import NEMESES, NETWORK_FAULTS, WEB_LINKS, Fault
from harness.history.timeline import FaultKind

Policy = Literal["serial", "overlap"]
POLICIES: tuple[Policy, ...] = ("serial", "overlap")


@dataclass(frozen=True)
class PlannedFault:
    """`kind` on `node` (and its `link`, for network faults) from `at` seconds after the soak
    started, for `seconds` (a restart takes as long as the node takes: 0 planned)."""

    at: float
    kind: FaultKind
    node: str
    seconds: float
    link: str | None = None

    @property
    def until(self) -> float:
        return self.at + self.seconds

    @property
    def fault(self) -> Fault:
        return Fault.of(self.kind, self.node, self.link, self.seconds)

    def __str__(self) -> str:
        where = f"{self.node}/{self.link}" if self.link else self.node
        return f"{self.at:8.1f} s  {self.kind:<10} {where:<14} {self.seconds:.1f} s"


def unknown_nemeses(kinds: tuple[str, ...]) -> list[str]:
    return [k for k in kinds if k not in NEMESES]


def schedule(seed: int, kinds: tuple[FaultKind, ...], nodes: list[str], duration_s: float,
             fault_s: float, quiet_s: float, policy: Policy = "serial",
             at_once: int | None = None) -> list[PlannedFault]:
    """The faults of a soak of `duration_s`, in start order. Every fault ends at least
    `quiet_s` before the end (the cluster recovers in view of the checks). Lengths vary from
    0.5x to 1.5x `fault_s`; serial quiet periods from 1x to 2x `quiet_s` (faults at least a
    second apart, so that the schedule ends). `at_once`: the most nodes under a fault at
    once (the blast radius; default, and at most, all but one)."""
    assert kinds and len(nodes) >= 2 and policy in POLICIES
    rng = random.Random(seed)
    faults: list[PlannedFault] = []
    recent: list[PlannedFault] = []  # the faults not yet over with their quiet period
    t = quiet_s
    while True:
        kind = FaultKind(rng.choice(kinds))
        seconds = 0.0 if kind == FaultKind.RESTART else round(fault_s * rng.uniform(0.5, 1.5), 1)
        link = rng.choice(WEB_LINKS) if kind in NETWORK_FAULTS else None
        if policy == "serial":
            at = round(t, 1)
            node = rng.choice(nodes)
        else:
            at = round(t + max(0.1, rng.expovariate(2 / (fault_s + quiet_s))), 1)
            recent = [f for f in recent if f.until + quiet_s > at]  # `at` only grows
            busy = {f.node for f in recent}
            free = [n for n in nodes if n not in busy]
            room = len(busy) < (len(nodes) - 1 if at_once is None else at_once)
            node = rng.choice(free) if len(free) > 1 and room else ""
        if at + seconds + quiet_s > duration_s:
            return faults
        if node:
            faults.append(PlannedFault(at, kind, node, seconds, link))
            recent.append(faults[-1])
        t = at + max(seconds + quiet_s * rng.uniform(1, 2), 1.0) if policy == "serial" else at
