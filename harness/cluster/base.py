"""The `Cluster` interface every backend implements, and the helpers they share.

A scenario sees only this: the topology (endpoints and identity rules), node control, the
Toxiproxy server in front of the nodes, and a `reset` that heals everything between
scenarios. How the roles are started (processes, containers, or not at all) is the backend's
business.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod

import requests

from harness.cluster.toxiproxy import ToxiproxyApi
from harness.config import Topology
from harness.errors import HarnessError
from harness.mutants import Mutant

WHOAMI = "/invoke/harness.demo:whoami"


class Cluster(ABC):
    backend: str
    topology: Topology
    mutant: Mutant | None = None
    toxiproxy: ToxiproxyApi | None = None

    @property
    def node_ids(self) -> list[str]:
        return self.topology.node_ids

    @property
    def ca_file(self) -> str | bool:
        """What `requests` takes as `verify` for this cluster's HTTPS."""
        tls = self.topology.tls
        return False if tls.insecure else str(tls.ca_file) if tls.ca_file else True

    def proxy_name(self, node: str, link: str) -> str:
        self.topology.node(node)
        return f"{node}-{link}"

    def require_toxiproxy(self) -> ToxiproxyApi:
        if self.toxiproxy is None:
            raise HarnessError("this cluster has no Toxiproxy server, so network faults cannot be injected")
        return self.toxiproxy

    @abstractmethod
    def kill(self, node: str) -> None: ...

    @abstractmethod
    def pause(self, node: str) -> None: ...

    @abstractmethod
    def resume(self, node: str) -> None: ...

    @abstractmethod
    def restart(self, node: str) -> None: ...

    def add_node(self) -> str:
        raise HarnessError(f"the {self.backend} backend cannot add nodes")

    def reset(self) -> None:
        """Heal every fault and restore every node's starting state."""

    def backend_connections(self) -> dict[str, int]:
        """Pool connections per node, counted at the back end itself (C12)."""
        raise HarnessError(f"the {self.backend} backend cannot count back-end connections")

    def node_log(self, node: str) -> str:
        return ""

    def lb_config(self) -> str:
        return ""

    def close(self) -> None:
        """Stop and remove everything the backend started."""

    def __enter__(self) -> "Cluster":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def endpoints(self) -> dict[str, object]:
        """What `harness up` prints: the entry points and each node's endpoints."""
        return {
            "backend": self.backend,
            "mutant": self.mutant.name if self.mutant else None,
            "entry": self.topology.entry.model_dump(exclude_none=True),
            "nodes": {n.id: n.endpoints.model_dump(exclude_none=True) for n in self.topology.nodes},
            "ca_file": str(self.topology.tls.ca_file) if self.topology.tls.ca_file else None,
            "toxiproxy": self.topology.toxiproxy,
        }

    def wait_in_rotation(self, nodes: list[str] | None = None, timeout_s: float = 10.0) -> None:
        """Wait until the entry point's answers come from every node in `nodes`."""
        want = set(nodes or self.node_ids)
        url = self.topology.entry.http
        if url is None:
            return
        seen: set[str] = set()
        header = self.topology.identity.http.header or "X-Node-Id"
        deadline = time.monotonic() + timeout_s
        for _ in range(200 * len(want)):
            try:
                seen.add(requests.get(url + WHOAMI, timeout=1).headers.get(header, ""))
            except requests.RequestException:
                time.sleep(0.05)
            if want <= seen:
                return
            if time.monotonic() > deadline:
                break
            time.sleep(0.01)
        missing = ", ".join(sorted(want - seen))
        raise HarnessError(f"node(s) {missing} did not answer through {url} within {timeout_s:.0f} s")
