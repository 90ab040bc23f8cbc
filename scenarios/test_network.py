"""C4: latency, timeouts, resets and bandwidth limits on one node's link are survived."""

import pytest

from harness.fault_kinds import NETWORK_FAULTS
from harness.history.timeline import FaultKind
from harness.properties import Property

TOXICS = [kind for kind in NETWORK_FAULTS if kind != FaultKind.CUT]  # a cut is C2/C3's


@pytest.mark.network
@pytest.mark.http
@pytest.mark.parametrize("toxic", [str(kind) for kind in TOXICS])
def test_network_faults_on_one_node_are_survived(scenario, toxic, victim):
    scenario.nemesis.require(toxic, link="http")
    with scenario.traffic.load_through_fault() as load:
        node = scenario.victims.pick(load, victim)
        with scenario.nemesis.fault(toxic, node, link="http") as event:
            scenario.nemesis.hold()
    scenario.check(scenario.judge.failover(scenario.log.records, event, Property.C4))
