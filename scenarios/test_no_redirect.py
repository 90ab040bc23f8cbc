"""C6/C7: FTP and SMTP addressed to a node that fails error out; no other node serves them."""

import os
import uuid

import pytest

from harness import checks

ATTEMPTS = 5


@pytest.mark.no_redirect
@pytest.mark.ftp
def test_ftp_to_a_failed_node_is_not_served_by_another(scenario):
    victim, peers = scenario.nodes[0], scenario.nodes[1:]
    ftp = scenario.ftp()
    with ftp.session(victim) as open_session:
        open_session.upload(f"{uuid.uuid4().hex}.dat", os.urandom(512))
        with scenario.fault("kill", victim) as event:
            open_session.upload(f"{uuid.uuid4().hex}.dat", os.urandom(512))
            for _ in range(ATTEMPTS):
                ftp.upload(victim, f"{uuid.uuid4().hex}.dat", os.urandom(512))
                for peer in peers:
                    ftp.upload(peer, f"{uuid.uuid4().hex}.dat", os.urandom(512))
    scenario.check(checks.not_redirected(scenario.log.records, victim, event, prop="C6"))


@pytest.mark.no_redirect
@pytest.mark.smtp
def test_smtp_to_a_failed_node_is_not_served_by_another(scenario):
    victim, peers = scenario.nodes[0], scenario.nodes[1:]
    smtp = scenario.smtp()
    smtp.send(victim, uuid.uuid4().hex)
    with scenario.fault("kill", victim) as event:
        for _ in range(ATTEMPTS):
            smtp.send(victim, uuid.uuid4().hex)
            for peer in peers:
                smtp.send(peer, uuid.uuid4().hex)
    scenario.check(checks.not_redirected(scenario.log.records, victim, event, prop="C7"))
    audit = scenario.admin(peers[0], "audit").detail["entries"]
    scenario.check(checks.exactly_once(scenario.log.records, audit, kind="mail", prop="C7"))
