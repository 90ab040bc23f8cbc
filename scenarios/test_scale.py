"""C13: adding a node raises saturated throughput, and the new node takes its share.

A short saturating step on a cluster of its own (N = 2 -> 3); the full capacity run belongs to
`locust -f loadtests/`. The workload is the slow service, so each node's capacity is its
thread pool, not this machine's cores.
"""

import pytest

from harness import checks
from harness.errors import HarnessError

SATURATE = {"service": "harness.demo:slow", "users": 40, "rate": 100.0}
STEP_S = 4.0


def _throughput(records) -> float:
    ok = [r for r in records if r.ok]
    if len(ok) < 2:
        return 0.0
    return len(ok) / (max(r.end_mono for r in ok) - min(r.start_mono for r in ok))


@pytest.mark.scale
@pytest.mark.http
def test_one_more_node_adds_capacity(own_cluster_scenario):
    scenario = own_cluster_scenario
    with scenario.steady_load(seconds=STEP_S, **SATURATE) as before:
        pass
    new_node = scenario.cluster.add_node()
    try:
        scenario.cluster.wait_in_rotation([new_node], timeout_s=scenario.thresholds.rejoin_bound)
    except HarnessError:
        pass  # a node that never enters the rotation is what the check below judges
    with scenario.steady_load(seconds=STEP_S, **SATURATE) as after:
        pass
    served = [r for r in after.records if r.ok]
    share = sum(r.node == new_node for r in served) / max(len(served), 1)
    scenario.check(checks.scales(_throughput(before.records), _throughput(after.records),
                                 scenario.thresholds.min_scale_ratio, share,
                                 fair_share=1 / len(scenario.nodes)))
