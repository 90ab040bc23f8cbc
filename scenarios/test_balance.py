"""C1: requests through the cluster entry point spread over all healthy nodes, judged at the
balancer's unit: requests for an L7 balancer, connections for an L4 one."""

import pytest

from harness import checks


@pytest.mark.lb
def test_load_is_balanced_over_all_nodes(scenario, web_protocol):
    t = scenario.thresholds
    unit = scenario.victims.balancing_unit(web_protocol)
    needed = checks.observations_needed(len(scenario.nodes), t.balance_tolerance, t.balance_alpha)
    answers = needed * len(scenario.nodes)
    # until the nodes have served what the check needs; on a slow machine up to thrice the plan
    with scenario.traffic.steady_load(seconds=3 * scenario.traffic.seconds_for(answers), protocol=web_protocol,
                              fresh_connections=unit == "connection") as load:
        scenario.traffic.load_until_served(load, answers)
    scenario.check(checks.balance(load.records, scenario.nodes, tolerance=t.balance_tolerance,
                                  alpha=t.balance_alpha, unit=unit))
