"""C6/C7: FTP and SMTP addressed to a node that fails error out; no other node serves them,
neither the node's own endpoint nor the cluster entry (when the topology declares one). With
an entry, the victim is the node the entry sends this client's sessions to."""

import os
import uuid

import pytest

from harness import checks
from harness.history.requests import ENTRY
from harness.properties import Property

ATTEMPTS = 5  # rounds of sessions, spread over the fault: a balancer's health check that
# takes the node out (and may then send its sessions elsewhere) needs a moment
FTP_FIX = "ftp.user, ftp.password_env, ftp.directory and the nodes' ftp endpoints"
SMTP_FIX = "smtp.sender, smtp.recipient, smtp.user/password_env and the nodes' smtp endpoints"


def _file() -> tuple[str, bytes]:
    return f"{uuid.uuid4().hex}.dat", os.urandom(512)


@pytest.mark.no_redirect
@pytest.mark.ftp
@pytest.mark.injects("kill")
def test_ftp_to_a_failed_node_is_not_served_by_another(scenario):
    scenario.nemesis.require("kill")
    ftp = scenario.traffic.ftp()
    entry = scenario.cluster.topology.entry.ftp is not None
    victim = scenario.victims.by_session("ftp", lambda: ftp.upload(ENTRY, *_file()), FTP_FIX)
    peers = [n for n in scenario.nodes if n != victim]
    with ftp.session(victim) as open_session:
        scenario.traffic.expect_set_up(open_session.upload(*_file()), FTP_FIX)
        with scenario.nemesis.fault("kill", victim) as event:
            open_session.upload(*_file())
            for _ in scenario.nemesis.spread(ATTEMPTS):
                ftp.upload(victim, *_file())
                for endpoint in [*peers, *([ENTRY] if entry else [])]:
                    ftp.upload(endpoint, *_file())
    verdict = checks.not_redirected(scenario.log.records, event, prop=Property.C6)
    scenario.check(verdict if entry else verdict.noting("FTP through a cluster entry (entry.ftp)"))


@pytest.mark.no_redirect
@pytest.mark.smtp
@pytest.mark.injects("kill")
def test_smtp_to_a_failed_node_is_not_served_by_another(scenario):
    scenario.nemesis.require("kill")
    smtp = scenario.traffic.smtp()
    entry = scenario.cluster.topology.entry.smtp is not None
    victim = scenario.victims.by_session("smtp", lambda: smtp.send(ENTRY, uuid.uuid4().hex), SMTP_FIX)
    peers = [n for n in scenario.nodes if n != victim]
    scenario.traffic.expect_set_up(smtp.send(victim, uuid.uuid4().hex), SMTP_FIX)
    with scenario.nemesis.fault("kill", victim) as event:
        for _ in scenario.nemesis.spread(ATTEMPTS):
            smtp.send(victim, uuid.uuid4().hex)
            for endpoint in [*peers, *([ENTRY] if entry else [])]:
                smtp.send(endpoint, uuid.uuid4().hex)
    unchecked = [] if entry else ["SMTP through a cluster entry (entry.smtp)"]
    side_effects = scenario.cluster.topology.evidence.side_effects
    if side_effects is None:
        unchecked.append("never delivered twice (evidence.side_effects)")
    scenario.check(checks.not_redirected(scenario.log.records, event, prop=Property.C7)
                   .noting(*unchecked))
    if side_effects is not None:
        scenario.check(checks.exactly_once(scenario.log.records,
                                           scenario.evidence.side_effects(side_effects),
                                           kind="mail", prop=Property.C7))
