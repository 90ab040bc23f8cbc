"""C10: cache entries and sessions written through one node are read through another after
it dies, or while the two cannot reach each other (the cache is shared through the store,
not node to node); a node cut off from the shared store leaves the rotation instead of
failing requests."""

import uuid

import pytest

from harness import checks
from harness.history.requests import ENTRY
from harness.properties import Property

KEYS = 10
SESSIONS, CALLS = 4, 6


@pytest.mark.state
@pytest.mark.http
@pytest.mark.injects("kill")
def test_cache_entries_survive_the_node_that_wrote_them(scenario):
    spec = scenario.evidence.require("state")
    scenario.nemesis.require("kill")
    writer, readers = scenario.nodes[0], scenario.nodes[1:]
    http = scenario.traffic.http()
    written = {uuid.uuid4().hex: uuid.uuid4().hex for _ in range(KEYS)}
    for key, value in written.items():
        scenario.traffic.expect_set_up(http.send(spec.write, writer, {"key": key, "value": value}),
                                       "evidence.state.write")
    with scenario.nemesis.fault("kill", writer):
        reads = []
        for key in written:
            for reader in [*readers, ENTRY]:
                record = http.send(spec.read.request, reader, {"key": key}, key=key, keep_text=True)
                reads.append((record, scenario.evidence.read_answer(spec.read, record)))
    scenario.check(checks.state_continuity(reads, written))


@pytest.mark.state
@pytest.mark.http
@pytest.mark.injects("partition:node")
def test_cache_entries_reach_a_node_partitioned_from_the_writer(scenario):
    spec = scenario.evidence.require("state")
    writer, reader = scenario.nodes[0], scenario.nodes[1]
    scenario.nemesis.require("partition", link=reader)
    http = scenario.traffic.http()
    before = {uuid.uuid4().hex: uuid.uuid4().hex for _ in range(KEYS // 2)}
    during = {uuid.uuid4().hex: uuid.uuid4().hex for _ in range(KEYS // 2)}
    for key, value in before.items():
        scenario.traffic.expect_set_up(http.send(spec.write, writer, {"key": key, "value": value}),
                                       "evidence.state.write")
    reads = []
    with scenario.nemesis.fault("partition", writer, link=reader):
        for key, value in during.items():
            http.send(spec.write, writer, {"key": key, "value": value})
        for key in [*before, *during]:
            record = http.send(spec.read.request, reader, {"key": key}, key=key, keep_text=True)
            reads.append((record, scenario.evidence.read_answer(spec.read, record)))
    scenario.check(checks.state_continuity(reads, {**before, **during}))


@pytest.mark.state
@pytest.mark.http
@pytest.mark.injects("kill")
def test_sessions_keep_their_state_across_failover(scenario):
    session = scenario.evidence.require("state.session")
    scenario.nemesis.require("kill")
    clients = {f"session-{i}": scenario.traffic.http() for i in range(SESSIONS)}  # one cookie jar each
    victim = scenario.nodes[0]
    counts = []

    def round_of_calls() -> None:
        for name, client in clients.items():
            record = client.send(session.request, ENTRY, key=name, keep_text=True)
            counts.append((record, scenario.evidence.read_answer(session, record)))

    for _ in range(CALLS // 2):
        round_of_calls()
    with scenario.nemesis.fault("kill", victim):
        for _ in range(CALLS - CALLS // 2):
            round_of_calls()
    scenario.check(checks.session_continuity(counts))


@pytest.mark.state
@pytest.mark.http
@pytest.mark.injects("cut:store")
def test_node_cut_off_from_the_store_leaves_rotation(scenario, victim):
    state = scenario.evidence.require("state")
    session = scenario.evidence.require("state.session")
    scenario.nemesis.require_store_cut(state)
    with scenario.traffic.load_through_fault(call=session.request) as load:
        node = scenario.victims.pick(load, victim)
        with scenario.nemesis.store_cut(node, state) as event:
            scenario.nemesis.hold()
    scenario.check(scenario.judge.failover(scenario.log.records, event, Property.C10))
