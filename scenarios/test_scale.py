"""C13: adding a node raises saturated throughput, and the new node takes its share.

Saturation is found, not assumed: the load through the entry is stepped up until the cluster
stops keeping up (a step served clearly less than it offered, or past the p95 bound or the
error budget), before and after one node is added (on the reference cluster, to a 2-node
cluster of its own; on an external one by `evidence.scale.add`, removed again after). The
gain is judged only between two saturated measurements: where the generator was at its limit
or the cluster served every step in full, the verdict is inconclusive and says how to offer
more (`harness.saturation`). The reference's workload is its slow service, so each node's
capacity is its thread pool, not this machine's cores.
"""

import pytest

from harness.scaling import scale_by_one


@pytest.mark.scale
@pytest.mark.http
def test_one_more_node_adds_capacity(own_cluster_scenario, progress):
    scenario = own_cluster_scenario
    spec = scenario.evidence.require("scale")
    scaling = scale_by_one(scenario, spec.load, lambda label, step: progress(
        f"C13 {label}: step {step.number}, {step.offered_rps:.0f} req/s offered, "
        f"{step.served_rps:.0f} served, p95 {step.p95_s * 1000:.0f} ms"
        f"{'  <- ' + step.past if step.past else ''}"))
    scenario.report.attach_file("capacity", scaling.plot(
        scenario.directory / "capacity.png", "C13: throughput against offered load"))
    scenario.check(scaling.verdict(scenario))
