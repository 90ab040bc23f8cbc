"""C2/C3: a node killed, paused or cut off during load; HTTP(S) keeps succeeding on the others."""

import pytest

from harness import checks


@pytest.mark.failover
@pytest.mark.parametrize("fault", ["kill", "pause", "cut"])
def test_requests_fail_over_when_a_node_fails(scenario, web_protocol, fault):
    t = scenario.thresholds
    victim = scenario.nodes[-1]
    options = {"link": web_protocol} if fault == "cut" else {}
    with scenario.steady_load(seconds=t.fault_seconds + 3, protocol=web_protocol):
        scenario.hold(1)
        with scenario.fault(fault, victim, **options) as event:
            scenario.hold()
    scenario.check(checks.failover(scenario.log.records, event, error_budget=t.error_budget,
                                   max_gap_s=t.max_failover_gap, prop="C3" if web_protocol == "https" else "C2"))
