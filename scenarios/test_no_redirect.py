"""C6/C7: FTP and SMTP addressed to a node that fails error out; no other node serves them,
neither the node's own endpoint nor the cluster entry (when the topology declares one). With
an entry, the victim is the node the entry sends this client's sessions to. One shape for
both protocols (`sessions_to_a_killed_node`); SMTP adds that no message is delivered twice."""

import os
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext

import pytest

from harness import checks
from harness.history.requests import ENTRY, RequestRecord
from harness.properties import Property
from harness.verdict import Verdict

ATTEMPTS = 5  # rounds of sessions, spread over the fault: a balancer's health check that
# takes the node out (and may then send its sessions elsewhere) needs a moment
FTP_FIX = "ftp.user, ftp.password_env, ftp.directory and the nodes' ftp endpoints"
SMTP_FIX = "smtp.sender, smtp.recipient, smtp.user/password_env and the nodes' smtp endpoints"


@pytest.mark.no_redirect
@pytest.mark.ftp
@pytest.mark.injects("kill")
def test_ftp_to_a_failed_node_is_not_served_by_another(scenario):
    ftp = scenario.traffic.ftp()

    @contextmanager
    def held(node: str) -> Iterator[Callable[[], RequestRecord]]:
        with ftp.session(node) as session:  # logged in before the kill, used after it
            yield lambda: session.upload(*_file())

    scenario.check(sessions_to_a_killed_node(scenario, "ftp", Property.C6, FTP_FIX,
                                             lambda endpoint: ftp.upload(endpoint, *_file()), held))


@pytest.mark.no_redirect
@pytest.mark.smtp
@pytest.mark.injects("kill")
def test_smtp_to_a_failed_node_is_not_served_by_another(scenario):
    smtp = scenario.traffic.smtp()
    verdict = sessions_to_a_killed_node(scenario, "smtp", Property.C7, SMTP_FIX,
                                        lambda endpoint: smtp.send(endpoint, uuid.uuid4().hex))
    side_effects = scenario.cluster.topology.evidence.side_effects
    if side_effects is None:
        scenario.check(verdict.noting("never delivered twice (evidence.side_effects)"))
        return
    scenario.check(verdict)
    scenario.check(checks.exactly_once(scenario.log.records, scenario.evidence.side_effects(side_effects),
                                       kind="mail", prop=Property.C7))


def sessions_to_a_killed_node(scenario, protocol: str, prop: Property, fix: str,
                              send: Callable[[str], RequestRecord],
                              held: Callable[[str], AbstractContextManager[Callable[[], RequestRecord]]]
                              | None = None) -> Verdict:
    """Kill the victim; while it is down, send sessions to it, to every peer and through the
    entry, round after round; judge that none addressed to it was served elsewhere. `send`
    opens one session to an endpoint; `held`, a session opened on the victim before the kill
    and used once after it."""
    scenario.nemesis.require("kill")
    entry = scenario.cluster.topology.entry.get(protocol) is not None
    victim = scenario.victims.by_session(protocol, lambda: send(ENTRY), fix)
    endpoints = [victim, *(n for n in scenario.nodes if n != victim), *([ENTRY] if entry else [])]
    with held(victim) if held else nullcontext(None) as open_session:
        scenario.traffic.expect_set_up(open_session() if open_session else send(victim), fix)
        with scenario.nemesis.fault("kill", victim) as event:
            if open_session:
                open_session()
            for _ in scenario.nemesis.spread(ATTEMPTS):
                for endpoint in endpoints:
                    send(endpoint)
    verdict = checks.not_redirected(scenario.log.records, event, prop=prop)
    return verdict if entry else verdict.noting(f"{protocol.upper()} through a cluster entry (entry.{protocol})")


def _file() -> tuple[str, bytes]:
    return f"{uuid.uuid4().hex}.dat", os.urandom(512)
