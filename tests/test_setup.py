"""scripts/setup.sh leaves a working Docker alone: its decision, with stand-in `docker` and
`dockerd` programs on an otherwise empty PATH (this machine's own must not be seen)."""

import stat
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def fake(directory: Path, name: str, exit_code: int) -> None:
    path = directory / name
    path.write_text(f"#!/bin/bash\nexit {exit_code}\n")
    path.chmod(path.stat().st_mode | stat.S_IEXEC)


@pytest.mark.parametrize("docker_info, dockerd, plan", [
    (0, True, "use"),       # an engine answers (Docker CE, Moby, ours): nothing to install or start
    (0, False, "use"),      # even with no dockerd on PATH (a remote engine, rootless)
    (1, True, "start"),     # installed, not running: start it, install nothing
    (None, True, "start"),  # a dockerd without the client
    (1, False, "install"),  # a client alone (as this machine ships one): install the engine
    (None, False, "install"),
])
def test_setup_installs_docker_only_where_there_is_none(tmp_path, docker_info, dockerd, plan):
    if docker_info is not None:
        fake(tmp_path, "docker", docker_info)
    if dockerd:
        fake(tmp_path, "dockerd", 0)
    assert from_setup_sh(tmp_path, "docker_plan") == plan


def from_setup_sh(path: Path, function: str, **env: str) -> str:
    """What a function of setup.sh prints, with only `path` on PATH."""
    done = subprocess.run(["/bin/bash", "-c", f"source scripts/setup.sh && {function}"], cwd=ROOT,
                          env={"PATH": str(path), **env}, capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_docker_can_be_left_out_even_where_it_answers(tmp_path):
    fake(tmp_path, "docker", 0)
    assert from_setup_sh(tmp_path, "docker_plan", HARNESS_DOCKER="skip") == "skip"


def test_the_build_tools_come_from_debian_only_where_missing(tmp_path):
    """Go, npm and Java, which set-up uses, are added to the packages only when absent."""
    fake(tmp_path, "go", 0)
    assert from_setup_sh(tmp_path, "missing_tools").split() == ["npm", "default-jre-headless"]


def test_docker_io_is_not_among_the_packages_always_installed():
    script = (ROOT / "scripts" / "setup.sh").read_text()
    always = script[script.index("APT_PACKAGES=("):script.index(")", script.index("APT_PACKAGES=("))]
    assert "docker" not in always
