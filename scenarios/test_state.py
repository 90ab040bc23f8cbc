"""C10: cache entries and sessions written through one node are read through another after
it dies; a node cut off from the shared store leaves the rotation instead of failing requests."""

import uuid

import pytest

from harness import checks

KEYS = 10
SESSIONS, CALLS = 4, 6


@pytest.mark.state
@pytest.mark.http
def test_cache_entries_survive_the_node_that_wrote_them(scenario):
    scenario.require_reference_services("cache services (harness.demo:cachePut, cacheGet)")
    writer, readers = scenario.nodes[0], scenario.nodes[1:]
    http = scenario.http()
    written = {uuid.uuid4().hex: uuid.uuid4().hex for _ in range(KEYS)}
    for key, value in written.items():
        http.call("harness.demo:cachePut", endpoint=writer, params={"key": key, "value": value})
    with scenario.fault("kill", writer):
        reads = [http.call("harness.demo:cacheGet", endpoint=reader, params={"key": key}, key=key)
                 for key in written for reader in [*readers, "entry"]]
    scenario.check(checks.state_continuity(reads, written))


@pytest.mark.state
@pytest.mark.http
def test_sessions_keep_their_state_across_failover(scenario):
    scenario.require_reference_services("stateful counter (harness.demo:counter)")
    clients = {f"session-{i}": scenario.http() for i in range(SESSIONS)}  # one cookie jar each
    victim = scenario.nodes[0]

    def round_of_calls() -> None:
        for name, client in clients.items():
            client.call("harness.demo:counter", key=name)

    for _ in range(CALLS // 2):
        round_of_calls()
    with scenario.fault("kill", victim):
        for _ in range(CALLS - CALLS // 2):
            round_of_calls()
    scenario.check(checks.session_continuity(scenario.log.records))


@pytest.mark.state
@pytest.mark.http
def test_node_cut_off_from_the_store_leaves_rotation(scenario, victim):
    scenario.require_reference_services("stateful counter (harness.demo:counter)")
    t = scenario.thresholds
    scenario.require_fault("cut", link="redis")
    with scenario.steady_load(seconds=t.fault_seconds + 3, service="harness.demo:counter") as load:
        scenario.hold(1)
        node = scenario.pick_victim(load, victim)
        with scenario.fault("cut", node, link="redis") as event:
            scenario.hold()
    scenario.check(scenario.failover_verdict(event, prop="C10"))
