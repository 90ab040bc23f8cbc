"""How much CPU a load generator process asked for: the limit a capacity figure must not hide.

A Locust process is one core at most. When it needs all of that core, it cannot offer more,
and a "saturated" throughput measured then is the generator's. Its demand is what Linux's
scheduler counts per thread in `/proc/self/task/*/schedstat`: the time it ran plus the time
it was ready but waited for a CPU, over the wall time. Waiting counts: on a machine whose
CPUs are all busy, a generator that gets half a core and waits the other half is at its limit
as surely as one that runs a whole core. Where schedstat is missing, the process's own CPU
time is all that can be read (a demand that can only read too low under contention).
"""

from __future__ import annotations

import time
from pathlib import Path

TASKS = Path("/proc/self/task")


def scheduled_seconds() -> float:
    """Seconds this process's threads ran plus waited to run (ran only, without schedstat)."""
    total, read = 0, False
    for task in TASKS.glob("*/schedstat"):
        try:
            run_ns, wait_ns, _ = task.read_text().split()
        except (OSError, ValueError):
            continue  # a thread that just ended
        total += int(run_ns) + int(wait_ns)
        read = True
    return total / 1e9 if read else time.process_time()


class CpuDemand:
    """This process's CPU demand since the last `mark`, in cores."""

    def __init__(self) -> None:
        self.mark()

    def mark(self) -> None:
        self._since, self._used = time.monotonic(), scheduled_seconds()

    def since_mark(self) -> float:
        wall = time.monotonic() - self._since
        return (scheduled_seconds() - self._used) / wall if wall > 0 else 0.0
