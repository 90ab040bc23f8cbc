"""C12: connection pools live per node, counted at the back end itself: bounded by pool size,
released when a node dies, refilled when it returns. Every count read is an observation of
the history; the checks judge those."""

import threading
import time

import pytest

from harness import checks
from harness.errors import ConfigurationError, HarnessError

SAMPLE_S = 0.2
CONNECTIONS = "pool connections"


def _count(scenario, spec, nodes=None) -> dict:
    """One round of each node's connections as the back end counts them, recorded."""
    counts = scenario.evidence.observe(spec.connections, CONNECTIONS, nodes)
    for node, count in counts.items():
        if not isinstance(count, int):
            raise ConfigurationError(f"evidence.pools.connections for {node} answered {count!r}, "
                                     "not a number (use `count: true` with a regex)")
    return counts


def _refilled(scenario, spec) -> None:
    """Every node's pool full again at the back end before this scenario reads it (a node an
    earlier scenario restarted refills its pool as it starts): a node that has not within the
    rejoin bound is one sentence naming it and what the back end counted, rather than a
    verdict on a half-healed cluster. More than the pool's size is a leak: the check's."""
    bound = scenario.thresholds.rejoin_bound
    deadline = time.monotonic() + bound
    while True:
        try:
            counts = {n: scenario.evidence.fetch(spec.connections, n) for n in scenario.nodes}
        except HarnessError:
            return  # the back end cannot be read now (full?): the scenario's own readings show it
        short = {n: c for n, c in counts.items() if not isinstance(c, int) or c < spec.pool_size}
        if not short:
            return
        if time.monotonic() > deadline:
            node, count = next(iter(short.items()))
            raise HarnessError(f"{node} did not recover before this scenario: the back end counts {count} "
                               f"of its {spec.pool_size} pool connections {bound:g} s after the reset "
                               "(evidence.pools.connections)")
        time.sleep(SAMPLE_S / 2)


def _until(scenario, spec, node: str, want: int, bound_s: float) -> None:
    """Read the node's count until it is `want`, or `bound_s` has passed."""
    deadline = time.monotonic() + bound_s
    while _count(scenario, spec, [node]).get(node) != want and time.monotonic() < deadline:
        time.sleep(SAMPLE_S / 4)


@pytest.mark.pool
@pytest.mark.http
def test_pools_stay_within_their_size_under_load(scenario):
    spec = scenario.evidence.require("pools")
    _refilled(scenario, spec)
    done = threading.Event()

    def sample() -> None:
        while not done.wait(SAMPLE_S):
            _count(scenario, spec)  # a back end too full to answer is recorded as refused

    sampler = threading.Thread(target=sample, daemon=True)
    with scenario.traffic.steady_load(seconds=4, call=spec.load):
        sampler.start()
    done.set()
    sampler.join()
    scenario.check(checks.pool_bounds(scenario.observations.of(CONNECTIONS), spec.pool_size,
                                      spec.backend_limit))


@pytest.mark.pool
@pytest.mark.http
@pytest.mark.injects("kill")
def test_a_killed_nodes_connections_are_released_and_refilled(scenario):
    spec = scenario.evidence.require("pools")
    scenario.nemesis.require("kill")
    _refilled(scenario, spec)
    victim = scenario.nodes[-1]
    with scenario.nemesis.fault("kill", victim) as event:
        # the back end sees the connections close once it reads their end: a moment
        _until(scenario, spec, victim, 0, scenario.thresholds.membership_settle)
    # A restarted node listens before its pool has opened every connection: give it the
    # rejoin bound to refill, as a node gets to rejoin the balancer.
    _until(scenario, spec, victim, spec.pool_size, scenario.thresholds.rejoin_bound)
    scenario.check(checks.pool_released_and_refilled(scenario.observations.of(CONNECTIONS),
                                                     event, spec.pool_size))
