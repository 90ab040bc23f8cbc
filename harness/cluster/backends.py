"""The choice between the cluster backends, which all stand behind one interface (`base.Cluster`).

`local` runs every role as a process on loopback; `docker` as containers (testcontainers) on
a network of the harness's own; `external` drives a cluster described by a topology file;
`auto` takes docker when an engine answers, else local.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from harness.errors import HarnessError
from harness.mutants import get_mutant

if TYPE_CHECKING:
    from harness.cluster.base import Cluster

BACKENDS = ("auto", "local", "docker", "external")


def docker_answers() -> bool:
    if shutil.which("docker") is None:
        return False
    try:
        return subprocess.run(["docker", "info"], capture_output=True, timeout=5).returncode == 0
    except subprocess.TimeoutExpired:
        return False


def resolve_backend(backend: str, topology: str | Path | None) -> str:
    if backend not in BACKENDS:
        raise HarnessError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    if topology is not None and backend in ("auto", "external"):
        return "external"
    if topology is not None:
        raise HarnessError(f"--topology describes an external cluster; it cannot go with "
                           f"--backend {backend} (drop --backend, or use --backend external)")
    if backend == "external":
        raise HarnessError("the external backend needs --topology PATH describing the cluster")
    if backend == "auto":
        return "docker" if docker_answers() else "local"
    return backend


def start_cluster(backend: str = "auto", nodes: int = 3, mutant: str | None = None,
                  topology: str | Path | None = None, allow_remote: bool = False,
                  announce: bool = True) -> Cluster:
    chosen = resolve_backend(backend, topology)
    if announce and backend == "auto":
        print(f"harness: backend auto -> {chosen}", file=sys.stderr)
    if chosen == "external":
        from harness.cluster.external import ExternalCluster
        from harness.config import load_topology

        if mutant:
            raise HarnessError("--mutant applies to the reference cluster, not to an external one")
        assert topology is not None
        return ExternalCluster(load_topology(topology, allow_remote=allow_remote))
    if chosen == "docker":
        from harness.cluster.docker import DockerCluster

        return DockerCluster(nodes=nodes, mutant=get_mutant(mutant))
    from harness.cluster.local import LocalCluster

    return LocalCluster(nodes=nodes, mutant=get_mutant(mutant))

