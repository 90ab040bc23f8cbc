"""How the harness's own tests share the machine when `make test` runs them side by side
(pytest-xdist, `--dist loadgroup`).

Runs of the reference cluster keep apart by themselves: each takes a slot, its own loopback
addresses (127.SLOT.x.y) or docker network (198.18.SLOT.0/24). What the host has only one
of does not split that way, so the tests that hold it say so (`@pytest.mark.host_wide`) and
run one after another on one worker, while the others run beside them.
"""

import pytest

HOST_WIDE_GROUP = "host-wide"


@pytest.hookimpl(tryfirst=True)  # before xdist's own hook reads the groups
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.get_closest_marker("host_wide"):
            item.add_marker(pytest.mark.xdist_group(HOST_WIDE_GROUP))
