"""C12: connection pools live per node, counted at the back end itself: bounded by pool size,
released when a node dies, refilled when it returns."""

import threading

import pytest

from harness import checks
from harness.errors import HarnessError

SAMPLE_S = 0.2


def _require_backend_count(cluster):
    try:
        return cluster.backend_connections()
    except HarnessError as e:
        pytest.skip(str(e))


@pytest.mark.pool
@pytest.mark.http
def test_pools_stay_within_their_size_under_load(scenario):
    cluster = scenario.cluster
    _require_backend_count(cluster)
    samples: list[dict[str, int]] = []
    refused: list[str] = []
    done = threading.Event()

    def sample() -> None:
        while not done.wait(SAMPLE_S):
            try:
                samples.append(cluster.backend_connections())
            except HarnessError as e:  # a back end too full to answer us is evidence too
                refused.append(str(e))

    sampler = threading.Thread(target=sample, daemon=True)
    with scenario.steady_load(seconds=4, service="harness.demo:poolQuery"):
        sampler.start()
    done.set()
    sampler.join()
    scenario.check(checks.pool_bounds(samples, cluster.pool_size, cluster.backend_limit,
                                      refused=len(refused)))


@pytest.mark.pool
@pytest.mark.http
def test_a_killed_nodes_connections_are_released_and_refilled(scenario):
    cluster = scenario.cluster
    _require_backend_count(cluster)
    victim = scenario.nodes[-1]
    with scenario.fault("kill", victim):
        while_dead = cluster.backend_connections()[victim]
    refilled = cluster.backend_connections()[victim]
    scenario.check(checks.pool_released_and_refilled(victim, while_dead, refilled,
                                                     cluster.pool_size))
