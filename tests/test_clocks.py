"""A load worker's clock on the controller's timeline: the NTP-style estimate is never further
from the true offset than its bound, whatever the two legs of the round trip took."""

from hypothesis import given
from hypothesis import strategies as st

from harness.history.clocks import Exchange, Offset, WorkerClock, estimate

LEGS = st.lists(st.tuples(st.floats(0, 0.05), st.floats(0, 0.05)), min_size=1, max_size=10)


@given(st.floats(-1e6, 1e6), st.floats(0, 1e4), LEGS)
def test_the_estimate_is_within_its_bound_of_the_true_offset(true_offset, start, legs):
    exchanges, t = [], start
    for out, back in legs:  # the worker reads its clock when the request arrives
        exchanges.append(Exchange(t, t + out + true_offset, t + out + back))
        t += out + back + 0.001
    found = estimate(exchanges)
    assert abs(found.offset_s - true_offset) <= found.bound_s + 1e-6
    assert abs(found.bound_s - min((out + back) / 2 for out, back in legs)) < 1e-9


def test_a_worker_an_hour_ahead_is_placed_back_on_the_controllers_clock():
    found = estimate([Exchange(10.0, 3610.0004, 10.001), Exchange(11.0, 3611.003, 11.004)])
    assert abs(found.to_controller(3615.0) - 15.0) <= found.bound_s
    assert abs(found.bound_s - 0.0005) < 1e-9


def test_the_error_adds_both_bounds_and_the_drift_and_is_unknown_without_an_end():
    clock = WorkerClock("w", Offset(3600.0, 0.001), Offset(3600.004, 0.002))
    assert abs(clock.error_s - 0.007) < 1e-9 and abs(clock.drift_s - 0.004) < 1e-9
    assert WorkerClock("w", Offset(0.0, 0.001)).error_s is None
