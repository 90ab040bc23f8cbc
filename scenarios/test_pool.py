"""C12: connection pools live per node, counted at the back end itself: bounded by pool size,
released when a node dies, refilled when it returns."""

import threading
import time

import pytest

from harness import checks
from harness.errors import HarnessError

SAMPLE_S = 0.2


def _counts(scenario, spec) -> dict[str, int]:
    """Each node's connections as the back end counts them (`evidence.pools.connections`)."""
    counts = {}
    for node in scenario.nodes:
        count = scenario.evidence.fetch(spec.connections, "pools.connections", node)
        if not isinstance(count, int):
            raise HarnessError(f"evidence.pools.connections for {node} answered {count!r}, "
                               "not a number (use `count: true` with a regex)")
        counts[node] = count
    return counts


def _settle(scenario, spec, node: str, want: int, bound_s: float) -> int:
    """The node's connection count at the back end once it is `want`, or when `bound_s` ends."""
    deadline = time.monotonic() + bound_s
    while (count := _counts(scenario, spec)[node]) != want and time.monotonic() < deadline:
        time.sleep(SAMPLE_S / 4)
    return count


@pytest.mark.pool
@pytest.mark.http
def test_pools_stay_within_their_size_under_load(scenario):
    spec = scenario.require_evidence("pools")
    samples: list[dict[str, int]] = []
    refused: list[str] = []
    done = threading.Event()

    def sample() -> None:
        while not done.wait(SAMPLE_S):
            try:
                samples.append(_counts(scenario, spec))
            except HarnessError as e:  # a back end too full to answer us is evidence too
                refused.append(str(e))

    sampler = threading.Thread(target=sample, daemon=True)
    with scenario.steady_load(seconds=4, call=spec.load):
        sampler.start()
    done.set()
    sampler.join()
    scenario.check(checks.pool_bounds(samples, spec.pool_size, spec.backend_limit,
                                      refused=len(refused)))


@pytest.mark.pool
@pytest.mark.http
def test_a_killed_nodes_connections_are_released_and_refilled(scenario):
    spec = scenario.require_evidence("pools")
    victim = scenario.nodes[-1]
    with scenario.fault("kill", victim):
        # the back end sees the connections close once it reads their end: a moment
        while_dead = _settle(scenario, spec, victim, 0, scenario.thresholds.membership_settle)
    # A restarted node listens before its pool has opened every connection: give it the
    # rejoin bound to refill, as a node gets to rejoin the balancer.
    refilled = _settle(scenario, spec, victim, spec.pool_size, scenario.thresholds.rejoin_bound)
    scenario.check(checks.pool_released_and_refilled(victim, while_dead, refilled, spec.pool_size))
