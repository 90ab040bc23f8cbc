"""The programs a run relies on, asked for their versions once: `harness doctor` lists them
(and fails on a required one missing), a pytest run writes the versions it ran with into
Allure's environment."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass

ANSWER_S = 15


@dataclass(frozen=True)
class Component:
    name: str
    command: list[str]
    """what prints its version"""
    required: bool = True
    why: str = ""
    exit_codes: tuple[int, ...] = (0,)
    """the exit codes of a working version command (wrk prints its version with 1)"""
    key: str | None = None
    """its key in a run's Allure environment; None: not a run's concern (a report's or a
    benchmark's tool)"""


COMPONENTS = (
    Component("Docker engine", ["docker", "version", "--format", "{{.Server.Version}}"],
              required=False, why="the docker backend; without it auto uses local", key="docker"),
    Component("HAProxy", ["haproxy", "-v"], why="the load balancer", key="haproxy"),
    Component("Redis", ["redis-server", "--version"], why="the shared store", key="redis"),
    Component("Toxiproxy server", ["toxiproxy-server", "--version"], why="network faults",
              key="toxiproxy"),
    Component("Allure", ["allure", "--version"], why="HTML reports"),
    Component("Java", ["java", "-version"], why="Allure"),
    Component("debootstrap", ["debootstrap", "--version"], why="base images without a registry"),
    Component("Chromium", ["chromium", "--version"], why="the report test renders the Allure page"),
    Component("wrk", ["wrk", "--version"], required=False, why="benchmarks (bench/)", exit_codes=(0, 1)),
)


def answer(component: Component) -> tuple[bool, str]:
    """Whether it works, and its first line of version (or what is wrong)."""
    binary = component.command[0]
    if shutil.which(binary) is None:
        return False, f"missing: `{binary}` is not on PATH (run scripts/setup.sh)"
    try:
        done = subprocess.run(component.command, capture_output=True, text=True, timeout=ANSWER_S)
    except subprocess.TimeoutExpired:
        return False, f"`{' '.join(component.command)}` did not answer within {ANSWER_S} s"
    text = (done.stdout + done.stderr).strip().splitlines()
    if done.returncode not in component.exit_codes:
        return False, f"present but failing: {text[-1] if text else 'exit ' + str(done.returncode)}"
    return True, text[0] if text else "present"


def run_versions() -> dict[str, str]:
    """The versions a run's report records, by key."""
    return {c.key: answer(c)[1][:80] for c in COMPONENTS if c.key}
