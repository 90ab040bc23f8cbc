"""C14: every order a client was told succeeded is recorded exactly once, across a failover
and across client retries with the same idempotency key."""

import pytest

from harness import checks

RETRIED = 20


@pytest.mark.exactly_once
@pytest.mark.http
@pytest.mark.injects("kill")
def test_orders_are_recorded_exactly_once_across_failover(scenario, victim):
    spec = scenario.require_evidence("side_effects")
    order = scenario.require_evidence("side_effects.order")
    scenario.require_fault("kill")
    with scenario.load_through_fault(call=order, keyed=True) as load:
        with scenario.fault("kill", scenario.pick_victim(load, victim)):
            scenario.hold()
    http = scenario.http()
    acknowledged = [r for r in load.records if r.ok]
    for record in acknowledged[:RETRIED]:  # the client lost these acks and retries
        http.send(order, values={"key": record.key or ""}, key=record.key)
    recorded = scenario.recorded_side_effects(spec)
    scenario.check(checks.exactly_once(scenario.log.records, recorded, kind="order"))
