"""The distribution, from outside the checkout: built with `python -m build`, installed into a
fresh virtual environment in a temporary folder, and used there as a user would, on a zoo
member (haproxy-nginx): `clusterproof init`, `probe`, `run` on a sound configuration (exit 0),
`run` on a broken one (exit 1) and on a malformed topology (exit 2), with nothing written into
the checkout. The fresh environment sees this environment's dependencies (not the harness:
`import harness` there is the wheel's), so the test needs no package index beyond the build's
own backend."""

from __future__ import annotations

import shlex
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from harness.image import build_wheel
from zoo.table import ROOT, Member

pytestmark = [pytest.mark.cluster, pytest.mark.xdist_group("zoo-haproxy-nginx")]
MEMBER = Member.load(ROOT / "tests" / "zoo" / "haproxy-nginx")


def checkout_state() -> tuple[str, list[str]]:
    """What git sees changed in the checkout, and what is under reports/ (ignored by git)."""
    status = subprocess.run(["git", "status", "--porcelain", "--ignored=no"], cwd=ROOT,
                            capture_output=True, text=True, check=True).stdout
    return status, sorted(str(p) for p in (ROOT / "reports").rglob("*"))


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The wheel and sdist, built from a copy of the checkout's files (`python -m build`); the
    wheel installed into a fresh venv."""
    work = tmp_path_factory.mktemp("package")
    build_wheel(work / "dist", sdist=True)
    venv = work / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    [site] = venv.glob("lib/python*/site-packages")
    here = next(Path(p) for p in sys.path if p.endswith("site-packages"))
    (site / "dependencies.pth").write_text(f"{here}\n")  # this venv's packages, for the deps
    [wheel] = (work / "dist").glob("clusterproof-*.whl")
    done = subprocess.run([venv / "bin" / "pip", "install", "-q", "--no-deps", "--no-index", str(wheel)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    yield venv


def test_the_wheel_holds_the_harness_the_scenarios_the_locustfiles_and_the_plugin(installed):
    [wheel] = installed.parent.glob("dist/clusterproof-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    for part in ("harness/scenarios/test_failover.py", "harness/scenarios/conftest.py",
                 "harness/loadtests/cluster.py", "harness/topology.schema.json",
                 "harness/cluster/images/node/Dockerfile", "harness/sut/node.py"):
        assert part in names, part
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    text = zipfile.ZipFile(wheel).read(entry_points).decode()
    assert "[pytest11]" in text and "clusterproof = harness.plugin" in text
    assert list(installed.parent.glob("dist/clusterproof-*.tar.gz"))
    where = subprocess.run([installed / "bin" / "python", "-c", "import harness; print(harness.__file__)"],
                           capture_output=True, text=True, cwd=installed.parent, check=True).stdout
    assert where.startswith(str(installed)), where


def cluster(*args: str) -> None:
    log = ROOT / "tests" / "zoo" / "haproxy-nginx"
    with open("/dev/null", "w") as out:  # its daemons inherit this output: never a pipe
        code = subprocess.run(["./cluster.sh", *args], cwd=log, stdout=out, stderr=out,
                              stdin=subprocess.DEVNULL, timeout=300).returncode
    assert code == 0


def test_init_probe_and_run_from_a_folder_of_ones_own(installed, tmp_path):
    before = checkout_state()
    tool = str(installed / "bin" / "clusterproof")
    topology = str(MEMBER.topology)
    try:
        cluster("up", "bounded")
        steps = [([tool, "init", *MEMBER.init, "--topology-out", "mine.yaml"], 0),
                 ([tool, "probe", "--topology", "mine.yaml"], 0),
                 ([tool, "run", "--topology", topology, "-m", "lb"], 0)]
        for argv, expected in steps:
            done = subprocess.run(argv, cwd=tmp_path, capture_output=True, text=True, timeout=600)
            assert done.returncode == expected, (shlex.join(argv[1:3]), done.stdout[-1500:], done.stderr[-1500:])
        assert "# yaml-language-server: $schema=" in (tmp_path / "mine.yaml").read_text()
        pyargs = subprocess.run([installed / "bin" / "python", "-m", "pytest", "--pyargs", "harness.scenarios", "--topology",
                                 topology, "-m", "lb", "-p", "no:cacheprovider", "-q"],
                                cwd=tmp_path, capture_output=True, text=True, timeout=600)
        assert pyargs.returncode == 0 and "1 passed" in pyargs.stdout, pyargs.stdout[-1500:]
        assert (tmp_path / "reports" / "allure-results").is_dir()
        cluster("up", "never_enabled")
        broken = subprocess.run([tool, "run", "--topology", topology, "-m", "scale"], cwd=tmp_path,
                                capture_output=True, text=True, timeout=600)
        assert broken.returncode == 1, (broken.stdout[-1500:], broken.stderr[-1500:])
        assert "C13 scales: CONTRACT VIOLATED" in broken.stdout
    finally:
        cluster("down")
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump({"nodes": 3, "entry": {}}))
    bad = subprocess.run([tool, "run", "--topology", "bad.yaml"], cwd=tmp_path, capture_output=True,
                         text=True, timeout=120)
    assert bad.returncode == 2 and "bad.yaml" in bad.stdout + bad.stderr, (bad.stdout[-800:], bad.stderr[-800:])
    assert checkout_state() == before
