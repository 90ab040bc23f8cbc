"""C4: latency, timeouts, resets and bandwidth limits on one node's link are survived."""

import pytest

from harness.nemesis import TOXIC_ATTRIBUTES

TOXICS = TOXIC_ATTRIBUTES


@pytest.mark.network
@pytest.mark.http
@pytest.mark.parametrize("toxic", list(TOXICS))
def test_network_faults_on_one_node_are_survived(scenario, toxic, victim):
    scenario.require_fault(toxic, link="http")
    with scenario.load_through_fault() as load:
        node = scenario.pick_victim(load, victim)
        with scenario.fault(toxic, node, link="http", **TOXICS[toxic]) as event:
            scenario.hold()
    scenario.check(scenario.failover_verdict(event, prop="C4"))
