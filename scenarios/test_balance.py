"""C1: requests through the cluster entry point spread over all healthy nodes."""

import pytest

from harness import checks


@pytest.mark.lb
def test_load_is_balanced_over_all_nodes(scenario, web_protocol):
    t = scenario.thresholds
    with scenario.steady_load(seconds=4, protocol=web_protocol) as load:
        pass
    scenario.check(checks.balance(load.records, scenario.nodes, tolerance=t.balance_tolerance,
                                  alpha=t.balance_alpha))
