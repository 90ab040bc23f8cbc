"""The container image, built from the project's own files (`clusterproof image`: the
Dockerfile at the top, the Debian base from the local path, a wheelhouse made here), run as a
user runs it: on the host's network, a zoo member's topology mounted read-only, the report
written to the folder it runs in."""

from __future__ import annotations

import subprocess
import sys

import pytest

from zoo.table import ROOT

pytestmark = [pytest.mark.cluster, pytest.mark.docker, pytest.mark.xdist_group("zoo-haproxy-nginx")]
MEMBER = ROOT / "tests" / "zoo" / "haproxy-nginx"


def test_the_image_judges_a_zoo_member_from_a_mounted_topology(tmp_path):
    built = subprocess.run([sys.executable, "-m", "harness.cli", "image"], cwd=ROOT,
                           capture_output=True, text=True, timeout=1500)
    assert built.returncode == 0, built.stderr[-2000:]
    tag = built.stdout.split("built ", 1)[1].split(" ", 1)[0]
    with open("/dev/null", "w") as out:  # the member's daemons inherit this output
        assert subprocess.run(["./cluster.sh", "up", "bounded"], cwd=MEMBER, stdout=out, stderr=out,
                              stdin=subprocess.DEVNULL, timeout=300).returncode == 0
        try:
            done = subprocess.run(
                ["docker", "run", "--rm", "--network", "host", "-v", f"{MEMBER}:/cluster:ro",
                 "-v", f"{tmp_path}:/work", tag, "run", "--topology", "/cluster/topology.yaml", "-m", "lb"],
                capture_output=True, text=True, timeout=600)
        finally:
            subprocess.run(["./cluster.sh", "down"], cwd=MEMBER, stdout=out, stderr=out,
                           stdin=subprocess.DEVNULL, timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-1000:]
    assert "1 passed" in done.stdout and "exit 0" in done.stderr
    assert list((tmp_path / "reports" / "allure-results").glob("*-result.json"))
