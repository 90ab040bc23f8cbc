"""The `docker` backend (in progress): containers labelled per run, swept like processes."""

from __future__ import annotations

import subprocess

LABEL = "io.harness.run"


def sweep_containers() -> int:
    """Remove every container and network carrying the harness's label; returns how many."""
    try:
        ids = subprocess.run(["docker", "ps", "-aq", "--filter", f"label={LABEL}"],
                             capture_output=True, text=True, timeout=20).stdout.split()
        if ids:
            subprocess.run(["docker", "rm", "-f", *ids], capture_output=True, timeout=60)
        nets = subprocess.run(["docker", "network", "ls", "-q", "--filter", f"label={LABEL}"],
                              capture_output=True, text=True, timeout=20).stdout.split()
        if nets:
            subprocess.run(["docker", "network", "rm", *nets], capture_output=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return 0
    return len(ids) + len(nets)
