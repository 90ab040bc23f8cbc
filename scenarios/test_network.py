"""C4: latency, timeouts, resets and bandwidth limits on one node's link are survived."""

import pytest

from harness import checks

TOXICS = {
    "latency": {"latency": 3000, "jitter": 100},
    "timeout": {"timeout": 0},
    "reset_peer": {"timeout": 0},
    "bandwidth": {"rate": 1},
    "slicer": {"average_size": 16, "size_variation": 8, "delay": 20000},
    "limit_data": {"bytes": 64},
}


@pytest.mark.network
@pytest.mark.http
@pytest.mark.parametrize("toxic", list(TOXICS))
def test_network_faults_on_one_node_are_survived(scenario, toxic):
    t = scenario.thresholds
    victim = scenario.nodes[0]
    with scenario.steady_load(seconds=t.fault_seconds + 3):
        scenario.hold(1)
        with scenario.fault(toxic, victim, link="http", **TOXICS[toxic]) as event:
            scenario.hold()
    scenario.check(checks.failover(scenario.log.records, event, error_budget=t.error_budget,
                                   max_gap_s=t.max_failover_gap, prop="C4"))
