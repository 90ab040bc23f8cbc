"""C5: a restarted node is back in rotation within a bound and takes its share again."""

import pytest

from harness import checks


@pytest.mark.rejoin
@pytest.mark.http
def test_restarted_node_rejoins_and_takes_its_share(scenario):
    t = scenario.thresholds
    victim = scenario.nodes[-1]
    with scenario.steady_load(seconds=t.fault_seconds + t.rejoin_bound + 3):
        scenario.hold(1)
        with scenario.fault("kill", victim) as event:  # leaving the block restarts it
            scenario.hold()
        scenario.hold(t.rejoin_bound + 1)
    scenario.check(checks.rejoined(scenario.log.records, victim, event.end_mono,
                                   t.rejoin_bound, scenario.nodes))
