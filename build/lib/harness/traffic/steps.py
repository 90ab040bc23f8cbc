"""Locust's response-time histograms, read: a step's percentiles from its cumulative counts.

Kept free of Locust so it can be tested on its own; the step shape (`harness.traffic.capacity`)
judges what these give with `harness.saturation`, as the scenarios do.
"""

from __future__ import annotations

import bisect


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


def histogram_delta(before: dict[int, int], after: dict[int, int]) -> dict[int, int]:
    """The requests between two snapshots of Locust's cumulative response-time histogram."""
    return {k: v - before.get(k, 0) for k, v in after.items() if v - before.get(k, 0) > 0}
