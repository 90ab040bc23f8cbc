"""C8: a node that cannot serve a request answers 302 to a healthy peer that can."""

import pytest

from harness import checks

REQUESTS_PER_NODE = 10


@pytest.mark.redirect
def test_node_that_cannot_serve_redirects_to_a_peer_that_can(scenario, web_protocol):
    spec = scenario.evidence.require("redirect")
    cannot, can = scenario.nodes[:-1], scenario.nodes[-1:]
    http = scenario.traffic.http()
    with scenario.evidence.toggled(spec.unable, cannot):
        scenario.nemesis.settle_membership()
        calls = [http.send(spec.service, node, protocol=web_protocol)
                 for _ in range(REQUESTS_PER_NODE) for node in cannot]
    scenario.check(checks.redirected(calls, cannot, can))
