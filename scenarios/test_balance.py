"""C1: requests through the cluster entry point spread over all healthy nodes, judged at the
balancer's unit: requests for an L7 balancer, connections for an L4 one."""

import pytest


@pytest.mark.lb
def test_load_is_balanced_over_all_nodes(scenario, web_protocol):
    unit = scenario.victims.balancing_unit(web_protocol)
    needed = scenario.judge.observations_needed(len(scenario.nodes))
    answers = needed * len(scenario.nodes)
    # until the nodes have served what the check needs; on a slow machine up to thrice the plan
    with scenario.traffic.steady_load(seconds=3 * scenario.traffic.seconds_for(answers),
                                      protocol=web_protocol,
                                      fresh_connections=unit == "connection") as load:
        scenario.traffic.load_until_served(load, answers)
    scenario.check(scenario.judge.balance(load.records, scenario.nodes, unit))
