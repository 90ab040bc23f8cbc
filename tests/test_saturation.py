"""Saturation found, not assumed: steps judged from the request log, the search's ending, and
C13's verdict, which never calls an unsaturated pair a violation."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from harness.history.requests import RequestRecord
from harness.history.steps import LoadStep, merge_steps
from harness.saturation import (GENERATOR_BUSY, Bounds, Capacity, StepFigures, capacity, scales,
                                ends_search, measure, past_saturation)

BOUNDS = Bounds(min_served_ratio=0.9, max_p95_s=0.5, max_error_rate=0.01)


def answers(start, seconds, rps, node="n1", latency=0.01, ok=True):
    """`rps` answers a second for `seconds` from `start`, each taking `latency`."""
    n = int(seconds * rps)
    return [RequestRecord("http", "op", "entry", "u", start + i / rps, start + i / rps,
                          start + i / rps + latency, ok, 200 if ok else 503, node)
            for i in range(n)]


def step(number, offered, served, p95=0.01, errors=0.0, busy=0.1, answered=100):
    return StepFigures(number, number * 10, offered, 2.0, answered, served, p95, errors, busy,
                       "load process", past_saturation(offered, served, p95, errors, answered, BOUNDS))


@given(st.floats(1, 1e4), st.floats(0, 1e4), st.floats(0, 5), st.floats(0, 1), st.integers(0, 1000))
def test_a_step_is_within_the_bounds_exactly_when_it_kept_every_one(offered, served, p95, errors, n):
    within = not past_saturation(offered, served, p95, errors, n, BOUNDS)
    assert within == (n > 0 and served >= 0.9 * offered and p95 <= 0.5 and errors <= 0.01)


def test_steps_are_measured_on_their_last_two_thirds_from_the_request_log():
    # 3 s steps: 100 req/s offered and served, then 200 offered of which 150 served, slowly
    records = answers(0, 3, 100) + answers(3, 3, 150, latency=0.3)
    steps = [LoadStep(1, 10, 100.0, 0.0, 3.0, 0.2), LoadStep(2, 20, 200.0, 3.0, 6.0, 0.3)]
    first, second = measure(records, steps, BOUNDS)
    assert first.judged_s == 2.0 and first.served_rps == pytest.approx(100, abs=1) and not first.past
    assert second.served_rps == pytest.approx(150, abs=1) and second.p95_s == pytest.approx(0.3)
    assert "served 150 of the 200 req/s offered" in second.past


def test_a_knee_after_a_step_within_the_bounds_is_a_saturated_measurement():
    found = capacity([step(1, 40, 40), step(2, 80, 80), step(3, 120, 100), step(4, 160, 90)])
    assert found.saturated and found.knee == 3 and found.rps == 100
    assert len(found.steps) == 3  # nothing after the step that ended the search
    assert "saturated at 100 req/s" in found.says()


def test_what_ends_a_search_without_a_knee_is_said_and_is_never_a_capacity():
    unsaturated = capacity([step(1, 40, 40), step(2, 80, 80)])
    assert unsaturated.limit == "unsaturated" and "served in full" in unsaturated.says()
    generator = capacity([step(1, 4000, 4000), step(2, 8000, 6500, busy=0.97)])
    assert generator.limit == "generator" and "97% of a core" in generator.says()
    assert "--load-processes" in generator.advice()
    unmeasured = capacity([step(1, 40, 40), step(2, 80, 60, busy=None)])
    assert unmeasured.limit == "generator" and "not measured" in unmeasured.says()
    first = capacity([step(1, 40, 30)])
    assert first.limit == "first step" and "--step-rate" in first.advice()
    assert not any(c.saturated for c in (unsaturated, generator, unmeasured, first))


STEPS = st.lists(st.tuples(st.floats(1, 1000), st.floats(0, 1000), st.floats(0, 1),
                           st.floats(0, 0.05), st.one_of(st.none(), st.floats(0, 1.5))),
                 max_size=8).map(lambda rows: [step(i, *row) for i, row in enumerate(rows, 1)])


@given(STEPS)
def test_a_search_is_saturated_only_at_a_knee_the_generator_could_have_passed(steps):
    found = capacity(steps)
    stop = next((i for i, s in enumerate(steps) if ends_search(s)), None)
    if found.saturated:
        knee = steps[stop]
        assert stop > 0 and knee.past and knee.generator_busy is not None
        assert knee.generator_busy < GENERATOR_BUSY and found.knee == knee.number
        assert not any(s.past for s in steps[:stop])
    else:
        assert stop is None or stop == 0 or steps[stop].generator_busy is None \
            or steps[stop].generator_busy >= GENERATOR_BUSY
    assert found.rps == max((s.served_rps for s in found.steps), default=0.0)


def test_processes_steps_merge_into_the_time_they_all_ran_and_the_busiest_generator():
    one = [LoadStep(1, 5, 20.0, 0.0, 2.0, 0.2, "p1"), LoadStep(2, 10, 40.0, 2.0, 4.0, 0.5, "p1")]
    two = [LoadStep(1, 5, 20.0, 0.1, 2.1, 0.3, "p2")]
    [merged] = merge_steps([one, two])
    assert (merged.users, merged.offered_rps, merged.start_mono, merged.end_mono) == (10, 40.0, 0.1, 2.0)
    assert (merged.generator_busy, merged.generator) == (0.3, "p2")


def searched(*steps_) -> Capacity:
    return capacity(list(steps_))


SATURATED_2 = searched(step(1, 80, 80), step(2, 160, 160), step(3, 240, 170))
SATURATED_3 = searched(step(1, 80, 80), step(2, 160, 160), step(3, 240, 240), step(4, 320, 250))
FAST = searched(step(1, 2000, 2000), step(2, 4000, 3900, busy=0.95))


def after_records(new_node_share, n=300):
    nodes = ["n1", "n2"]
    return [RequestRecord("http", "op", "entry", "u", i, i, i + 0.01, True, 200,
                          "n3" if i < n * new_node_share else nodes[i % 2]) for i in range(n)]


def test_scales_on_two_saturated_searches_and_the_new_nodes_share():
    verdict = scales(SATURATED_2, SATURATED_3, after_records(1 / 3), "n3", 2, 1.2)
    assert verdict.passed and verdict.figures["ratio"] == pytest.approx(250 / 170, abs=0.01)
    flat = scales(SATURATED_2, SATURATED_2, after_records(1 / 3), "n3", 2, 1.2)
    assert flat.outcome == "violated" and "x1.00 < x1.2" in flat.explanation
    ignored = scales(SATURATED_2, SATURATED_2, after_records(0), "n3", 2, 1.2)
    assert "the new node n3 served 0%" in ignored.explanation


def test_an_unsaturated_pair_is_inconclusive_naming_the_generator_never_violated():
    verdict = scales(FAST, FAST, after_records(1 / 3), "n3", 2, 1.2)
    assert verdict.outcome == "inconclusive"
    assert "load generator was at its limit" in verdict.explanation and "95% of a core" in verdict.explanation


@given(st.sampled_from([SATURATED_2, SATURATED_3, FAST, searched(step(1, 40, 40))]),
       st.sampled_from([SATURATED_2, SATURATED_3, FAST, searched(step(1, 40, 20))]),
       st.floats(0, 1))
def test_the_gain_is_a_violation_only_between_two_saturated_searches(before, after, share):
    verdict = scales(before, after, after_records(share), "n3", 2, 1.2)
    gain_problem = "saturated throughput went from" in verdict.explanation
    assert not gain_problem or (before.saturated and after.saturated)
    if not (before.saturated and after.saturated):
        assert verdict.outcome in ("inconclusive", "violated")
        assert verdict.outcome == "inconclusive" or "new node" in verdict.explanation
