"""Locust's histograms read: percentiles, and what came between two snapshots."""

import math
from collections import Counter

from hypothesis import given
from hypothesis import strategies as st

from harness.traffic.steps import histogram_delta, percentile


@given(st.lists(st.integers(0, 5000), min_size=1, max_size=300), st.floats(0.01, 1.0))
def test_percentile_of_a_histogram_is_the_nearest_rank_of_the_samples(samples, q):
    ranked = sorted(samples)
    assert percentile(Counter(samples), q) == ranked[max(math.ceil(q * len(ranked)), 1) - 1]


@given(st.lists(st.integers(0, 50), max_size=100), st.lists(st.integers(0, 50), max_size=100))
def test_histogram_delta_is_what_came_between_two_snapshots(first, second):
    before = Counter(first)
    after = before + Counter(second)
    assert Counter(histogram_delta(dict(before), dict(after))) == Counter(second)
