"""C9: administrative services run on the node addressed, even one that redirects the rest."""

import pytest

from harness import checks


@pytest.mark.admin
@pytest.mark.http
def test_admin_services_are_not_redirected(scenario):
    scenario.require_reference_services("administrative services (wm.art.admin:quiesce, packages, poolStats)")
    node = scenario.nodes[0]
    scenario.admin(node, "quiesce", enable="true")  # from now on it redirects business calls
    scenario.settle_membership()
    http = scenario.http()
    admin_calls = [
        http.call("wm.art.admin:setConnection", endpoint=node,
                  params={"name": "harness.demo.conn:orders", "value": "jdbc:backend"}),
        http.call("wm.art.admin:packages", endpoint=node),
        http.call("wm.art.admin:poolStats", endpoint=node),
        http.call("wm.art.admin:health", endpoint=node),
    ]
    scenario.check(checks.runs_where_addressed(admin_calls))
