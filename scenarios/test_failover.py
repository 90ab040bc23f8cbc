"""C2/C3: a node killed, paused, cut off, partitioned from the balancer's host, or unable to
handle requests (its maintenance switch: up, answering 503) during load; HTTP(S) keeps
succeeding on the others, promptly. The victim is the node that carried most traffic in the
warm-up (or --victim)."""

import pytest

from harness.fault_kinds import failover_link
from harness.properties import Property


@pytest.mark.failover
@pytest.mark.parametrize("fault", ["kill", "pause", "cut", "partition", "unavailable"])
def test_requests_fail_over_when_a_node_fails(scenario, web_protocol, fault, victim):
    link = failover_link(fault, web_protocol)
    scenario.nemesis.require(fault, link)
    with scenario.traffic.load_through_fault(protocol=web_protocol) as load:
        node = scenario.victims.pick(load, victim)
        with scenario.nemesis.fault(fault, node, link) as event:
            scenario.nemesis.hold()
    prop = Property.C3 if web_protocol == "https" else Property.C2
    scenario.check(scenario.judge.failover(scenario.log.records, event, prop))
