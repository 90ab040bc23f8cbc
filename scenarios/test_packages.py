"""C11: every node reports the same versions, packages, connections and services, and a
replicated package reaches every node within a bound."""

import time
import uuid

import pytest

from harness import checks

POLL_S = 0.05


@pytest.mark.packages
@pytest.mark.http
def test_every_node_reports_the_same_manifest(scenario):
    scenario.require_reference_services("manifest service (wm.art.admin:packages)")
    manifests = {n: scenario.admin(n, "packages").detail for n in scenario.nodes}
    scenario.check(checks.identical(manifests))


@pytest.mark.packages
@pytest.mark.http
def test_a_replicated_package_reaches_every_node(scenario):
    scenario.require_reference_services("replication services (wm.art.admin:replicate, packages)")
    t = scenario.thresholds
    version = f"1.1.{uuid.uuid4().int % 10_000}"
    start = time.monotonic()
    scenario.admin(scenario.nodes[0], "replicate", package="HarnessExtras", version=version)
    arrivals: dict[str, float | None] = dict.fromkeys(scenario.nodes)
    deadline = start + 2 * t.replication_bound
    while None in arrivals.values() and time.monotonic() < deadline:
        for node in [n for n, at in arrivals.items() if at is None]:
            packages = scenario.admin(node, "packages").detail["packages"]
            if packages.get("HarnessExtras") == version:
                arrivals[node] = time.monotonic() - start
        time.sleep(POLL_S)
    scenario.check(checks.replicated_within(arrivals, t.replication_bound))
