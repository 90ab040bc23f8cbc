"""C5: a restarted node is back in rotation within a bound and takes its share again."""

import pytest

from harness import checks


@pytest.mark.rejoin
@pytest.mark.http
def test_restarted_node_rejoins_and_takes_its_share(scenario, victim):
    t = scenario.thresholds
    unit = scenario.balancing_unit("http")
    with scenario.steady_load(seconds=t.fault_seconds + t.rejoin_bound + 3,
                              fresh_connections=unit == "connection") as load:
        scenario.hold(1)
        node = scenario.pick_victim(load, victim)
        with scenario.fault("kill", node) as event:  # leaving the block restarts it
            scenario.hold()
        scenario.hold(t.rejoin_bound + 1)
    scenario.check(checks.rejoined(scenario.log.records, node, event.end_mono,
                                   t.rejoin_bound, scenario.nodes, alpha=t.balance_alpha,
                                   unit=unit))
