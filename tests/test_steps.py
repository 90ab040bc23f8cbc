"""The step load run's arithmetic: percentiles of Locust's histograms and the saturation point."""

import math
from collections import Counter

from hypothesis import given
from hypothesis import strategies as st

from harness.traffic.steps import Step, histogram_delta, judge_step, percentile, saturation


@given(st.lists(st.integers(0, 5000), min_size=1, max_size=300), st.floats(0.01, 1.0))
def test_percentile_of_a_histogram_is_the_nearest_rank_of_the_samples(samples, q):
    ranked = sorted(samples)
    assert percentile(Counter(samples), q) == ranked[max(math.ceil(q * len(ranked)), 1) - 1]


@given(st.lists(st.integers(0, 50), max_size=100), st.lists(st.integers(0, 50), max_size=100))
def test_histogram_delta_is_what_came_between_two_snapshots(first, second):
    before = Counter(first)
    after = before + Counter(second)
    assert Counter(histogram_delta(dict(before), dict(after))) == Counter(second)


def test_a_step_past_either_bound_is_saturated():
    fast = {10: 95, 20: 5}
    assert judge_step(4, 2.0, 100, 0, fast, max_p95_ms=50, max_error_rate=0.01).within_bounds
    assert not judge_step(4, 2.0, 100, 0, {10: 50, 90: 50}, 50, 0.01).within_bounds
    assert not judge_step(4, 2.0, 100, 2, fast, 50, 0.01).within_bounds
    assert not judge_step(4, 2.0, 0, 0, {}, 50, 0.01).within_bounds


def test_saturation_is_the_best_step_within_bounds():
    steps = [Step(2, 1, 100, 0, 100.0, 5, 0, True), Step(4, 1, 180, 0, 180.0, 9, 0, True),
             Step(6, 1, 250, 0, 250.0, 99, 0, False)]
    summary = saturation(steps, 50, 0.01)
    assert (summary["saturation_rps"], summary["saturation_users"]) == (180.0, 4)
    assert saturation([steps[2]], 50, 0.01)["saturation_rps"] == 0.0
