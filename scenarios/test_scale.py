"""C13: adding a node raises saturated throughput, and the new node takes its share.

A short saturating step before and after one node is added (on the reference cluster, to a
2-node cluster of its own; on an external one, by `evidence.scale.add`, removed afterwards).
The full capacity run belongs to `locust -f loadtests/`. The reference's workload is its slow
service, so each node's capacity is its thread pool, not this machine's cores.
"""

import pytest

from harness import checks
from harness.errors import HarnessError

SATURATE = {"users": 40, "rate": 100.0}
STEP_S = 4.0


@pytest.mark.scale
@pytest.mark.http
def test_one_more_node_adds_capacity(own_cluster_scenario):
    scenario = own_cluster_scenario
    spec = scenario.require_evidence("scale")
    load = {**SATURATE, **({"call": spec.load} if spec.load else {})}
    nodes_before = len(scenario.nodes)
    with scenario.steady_load(seconds=STEP_S, **load) as before:
        pass
    new_node = scenario.cluster.add_node()
    try:
        try:
            scenario.cluster.wait_in_rotation([new_node], timeout_s=scenario.thresholds.rejoin_bound)
        except HarnessError:
            pass  # a node that never enters the rotation is what the check below judges
        with scenario.steady_load(seconds=STEP_S, **load) as after:
            pass
    finally:
        scenario.cluster.remove_node(new_node)  # leave the cluster as it was found
    scenario.check(checks.scales(before.records, after.records, new_node, nodes_before,
                                 scenario.thresholds.min_scale_ratio))
