"""C9: administrative services run on the node addressed, even one that redirects the rest."""

import pytest

from harness import checks


@pytest.mark.admin
@pytest.mark.http
def test_admin_services_are_not_redirected(scenario):
    spec = scenario.evidence.require("admin")
    node = scenario.nodes[0]
    http = scenario.traffic.http()
    try:
        if spec.redirecting is None:
            calls = [http.send(service, node) for service in spec.services]
            verdict = checks.runs_where_addressed(calls).noting(
                "the node was not redirecting other requests (evidence.admin.redirecting)")
        else:
            with scenario.evidence.toggled(spec.redirecting, [node]):
                scenario.nemesis.settle_membership()  # from now on it redirects business calls
                calls = [http.send(service, node) for service in spec.services]
            verdict = checks.runs_where_addressed(calls)
    finally:
        scenario.evidence.undo(spec.undo, node)
    scenario.check(verdict)
