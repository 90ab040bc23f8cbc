"""The load generator's own record of a stepped load: each step as it ran, and how busy it was.

A capacity measured on a cluster that was never saturated is no capacity, and a generator
that ran out of CPU saturates nothing but itself. So a stepped load (the saturation search of
C13 and capacity runs) leaves, beside the request log, one record per step and generating
process: when the step ran (on the controller's monotonic clock, as the request log), how
many users it had, the load they offered, and the process's CPU demand over the step (the
time it ran plus the time it waited for a CPU, over the step's length: a process that asks
for a whole core is at its limit, whether it got the core or waited for it).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path


@dataclass(frozen=True)
class LoadStep:
    number: int
    """1, 2, ...: the step's place in the plan"""
    users: int
    offered_rps: float
    """what the step's users offer between them: users x each one's rate"""
    start_mono: float
    end_mono: float
    generator_busy: float | None
    """the CPU demand of the busiest generating process over the step, in cores (None: not
    measurable on this system)"""
    generator: str = ""
    """which process (or worker) that was"""

    def to_json(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"))


def read_steps(path: Path) -> list[LoadStep]:
    """The complete lines of a steps file (a generator may be writing the next one)."""
    if not path.exists():
        return []
    text = path.read_text()
    return [LoadStep(**json.loads(line)) for line in text[:text.rfind("\n") + 1].splitlines() if line]


def merge_steps(per_process: Iterable[list[LoadStep]]) -> list[LoadStep]:
    """One record per step from several processes' records of the same plan: the users and
    offered load summed, the time the step ran in all of them (they start a moment apart), and
    the busiest process's demand. Only steps every process has finished are merged."""
    runs = [sorted(r, key=lambda s: s.number) for r in per_process]
    if not runs or any(not r for r in runs):
        return []
    merged = []
    for same in zip(*runs):
        busiest = max(same, key=lambda s: -1.0 if s.generator_busy is None else s.generator_busy)
        merged.append(LoadStep(
            same[0].number, sum(s.users for s in same), round(sum(s.offered_rps for s in same), 3),
            max(s.start_mono for s in same), min(s.end_mono for s in same),
            busiest.generator_busy, busiest.generator))
    return merged
