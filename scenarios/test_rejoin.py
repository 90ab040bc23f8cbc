"""C5: a restarted node is back in rotation within a bound and takes its share again. The load
runs as long as the restart takes: until the node has been back for the bound with enough
answers to judge its share (or has missed the bound), at most --rejoin-load-cap seconds."""

import pytest


@pytest.mark.rejoin
@pytest.mark.http
@pytest.mark.injects("kill")
def test_restarted_node_rejoins_and_takes_its_share(scenario, victim):
    scenario.nemesis.require("kill")
    t = scenario.thresholds
    unit = scenario.victims.balancing_unit("http")
    with scenario.traffic.steady_load(seconds=t.rejoin_load_cap,
                                      fresh_connections=unit == "connection") as load:
        scenario.nemesis.hold(1)
        node = scenario.victims.pick(load, victim)
        with scenario.nemesis.fault("kill", node) as event:  # leaving the block restarts it
            scenario.nemesis.hold()
        scenario.traffic.load_until_rejoin_judgeable(load, node, event.end_mono)
    scenario.check(scenario.judge.rejoin(scenario.log.records, node, event.end_mono,
                                         scenario.nodes, unit))
