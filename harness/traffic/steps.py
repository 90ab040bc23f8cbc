"""The arithmetic of a step load run, kept free of Locust so it can be tested on its own."""

from __future__ import annotations

import bisect
from dataclasses import asdict, dataclass
from typing import Any


@dataclass
class Step:
    users: int
    seconds: float
    requests: int
    failures: int
    rps: float
    p95_ms: float
    error_rate: float
    within_bounds: bool


def percentile(histogram: dict[int, int], q: float) -> float:
    """The q-quantile of a {rounded response time: count} histogram, as Locust keeps them."""
    total = sum(histogram.values())
    if total == 0:
        return 0.0
    keys = sorted(histogram)
    cumulative, acc = [], 0
    for k in keys:
        acc += histogram[k]
        cumulative.append(acc)
    return float(keys[bisect.bisect_left(cumulative, q * total)])


def judge_step(users: int, seconds: float, requests: int, failures: int,
               histogram: dict[int, int], max_p95_ms: float, max_error_rate: float) -> Step:
    """One step's figures from its own requests, and whether it stayed within both bounds."""
    p95 = percentile(histogram, 0.95)
    error_rate = failures / requests if requests else 1.0
    return Step(users, round(seconds, 2), requests, failures,
                round(requests / seconds, 1) if seconds > 0 else 0.0, p95, round(error_rate, 4),
                requests > 0 and p95 <= max_p95_ms and error_rate <= max_error_rate)


def histogram_delta(before: dict[int, int], after: dict[int, int]) -> dict[int, int]:
    """The requests between two snapshots of Locust's cumulative response-time histogram."""
    return {k: v - before.get(k, 0) for k, v in after.items() if v - before.get(k, 0) > 0}


def saturation(steps: list[Step], max_p95_ms: float, max_error_rate: float) -> dict[str, Any]:
    """The saturation throughput: the best throughput of a step within the bounds."""
    good = [s for s in steps if s.within_bounds]
    best = max(good, key=lambda s: s.rps) if good else None
    return {"saturation_rps": best.rps if best else 0.0,
            "saturation_users": best.users if best else 0,
            "bounds": {"max_p95_ms": max_p95_ms, "max_error_rate": max_error_rate},
            "steps": [asdict(s) for s in steps]}
