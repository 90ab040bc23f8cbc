"""C14: every order a client was told succeeded is recorded exactly once, across a failover
and across client retries with the same idempotency key."""

import pytest

from harness import checks

RETRIED = 20


@pytest.mark.exactly_once
@pytest.mark.http
@pytest.mark.injects("kill")
def test_orders_are_recorded_exactly_once_across_failover(scenario, victim):
    spec = scenario.evidence.require("side_effects")
    order = scenario.evidence.require("side_effects.order")
    scenario.nemesis.require("kill")
    with scenario.traffic.load_through_fault(call=order, keyed=True) as load:
        with scenario.nemesis.fault("kill", scenario.victims.pick(load, victim)):
            scenario.nemesis.hold()
    http = scenario.traffic.http()
    acknowledged = [r for r in load.records if r.ok]
    for record in acknowledged[:RETRIED]:  # the client lost these acks and retries
        http.send(order, values={"key": record.key or ""}, key=record.key)
    recorded = scenario.evidence.side_effects(spec)
    scenario.check(checks.exactly_once(scenario.log.records, recorded, kind="order"))
