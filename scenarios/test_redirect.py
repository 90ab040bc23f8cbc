"""C8: a node that cannot serve a request answers 302 to a healthy peer that can."""

import pytest

from harness import checks

REQUESTS_PER_NODE = 10


@pytest.mark.redirect
def test_node_without_the_package_redirects_to_a_peer_that_has_it(scenario, web_protocol):
    scenario.require_reference_services("package services (wm.art.admin:packageDisable, harness.demo:echo)")
    cannot, can = scenario.nodes[:-1], scenario.nodes[-1:]
    for node in cannot:
        scenario.admin(node, "packageDisable", package="HarnessDemo")
    scenario.settle_membership()
    http = scenario.http()
    for _ in range(REQUESTS_PER_NODE):
        for node in cannot:
            http.call("harness.demo:echo", endpoint=node, protocol=web_protocol)
    echoes = [r for r in scenario.log.records if r.operation == "harness.demo:echo"]
    scenario.check(checks.redirected(echoes, cannot, can))
