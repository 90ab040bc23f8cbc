"""C14: every order a client was told succeeded is recorded exactly once, across a failover
and across client retries with the same idempotency key."""

import pytest

from harness import checks

RETRIED = 20


@pytest.mark.exactly_once
@pytest.mark.http
def test_orders_are_recorded_exactly_once_across_failover(scenario, victim):
    scenario.require_reference_services("order service (harness.demo:order)")
    t = scenario.thresholds
    with scenario.steady_load(seconds=t.fault_seconds + 3, service="harness.demo:order",
                              keyed=True) as load:
        scenario.hold(1)
        with scenario.fault("kill", scenario.pick_victim(load, victim)):
            scenario.hold()
    http = scenario.http()
    acknowledged = [r for r in load.records if r.ok]
    for record in acknowledged[:RETRIED]:  # the client lost these acks and retries
        http.call("harness.demo:order", params={"key": record.key or ""}, key=record.key)
    scenario.check(checks.exactly_once(scenario.log.records, scenario.require_side_effects(),
                                       kind="order"))
