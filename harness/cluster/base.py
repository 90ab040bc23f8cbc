"""The `Cluster` interface every backend implements, and the helpers they share.

A scenario sees only this: the topology (endpoints and identity rules), node control, the
Toxiproxy server in front of the nodes, and a `reset` that heals everything between
scenarios. How the roles are started (processes, containers, or not at all) is the backend's
business.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod

from harness.config import Protocol, Topology
from harness.errors import ConfigurationError, HarnessError
from harness.history.timeline import FaultKind
from harness.history.requests import RequestLog
from harness.kernel import NoScope, Scope
from harness.mutants import Mutant
from harness.toxiproxy import ToxiproxyApi
from harness.traffic.clients import HttpClient


class Cluster(ABC):
    backend: str
    topology: Topology
    mutant: Mutant | None = None
    toxiproxy: ToxiproxyApi | None = None
    warnings: list[str]
    """What the cluster showed that may be wrong but is not known to be (said, never fatal)."""

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

    def missing_for_fault(self, kind: FaultKind) -> str | None:
        """The topology field this cluster lacks to inject the node fault `kind` (kill,
        pause) and heal it, or None if it can. Network faults are the engines' business
        (`harness.injector.network_engine`)."""
        return None

    def kernel_scope(self, node: str, link: str) -> Scope:
        """Where a kernel network fault on `node`'s `link` goes (see `harness.kernel`)."""
        raise NoScope(reason=f"the {self.backend} backend places no kernel faults")

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

    def make_unavailable(self, node: str) -> None:
        """Turn the node's maintenance switch on: it answers HTTP 503 to every request."""
        raise HarnessError(f"the {self.backend} backend has no maintenance switch for nodes")

    def make_available(self, node: str) -> None:
        """Turn it off again."""
        raise HarnessError(f"the {self.backend} backend has no maintenance switch for nodes")

    def add_node(self) -> str:
        """Start one more node and bring it into the balancer's rotation; its id."""
        raise HarnessError(f"the {self.backend} backend cannot add nodes")

    def remove_node(self, node: str) -> None:
        """Take a node that `add_node` added out again."""
        raise HarnessError(f"the {self.backend} backend cannot remove nodes")

    def reset(self) -> None:
        """Heal every fault and restore every node's starting state."""

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

    def wait_in_rotation(self, nodes: list[str] | None = None, timeout_s: float = 10.0,
                         protocol: Protocol = "http", strict: bool = True) -> str | None:
        """Wait until the entry's answers to the topology's request come from every node in
        `nodes`, named by the topology's identity rule; give up after `timeout_s`.

        Not `strict`, nodes the entry never named are said (the sentence is returned), not
        raised: a balancer that sends everything to one node, or pins one client to one node,
        is what C1 judges, and the harness cannot know which it is before it measures. What
        is known to be wrong (no answer as the topology says, no identity) raises always."""
        want = set(nodes or self.node_ids)
        if self.topology.entry.get(protocol) is None:
            return None
        log = RequestLog()
        client = HttpClient(self.topology, log, verify=self.ca_file, timeout_s=1.0,
                            fresh_connections=True)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            record = client.request(protocol=protocol)
            if want <= {r.node for r in log if r.ok}:
                return None
            time.sleep(0.01 if record.ok else 0.05)
        error = rotation_error(log, want, self.topology.entry.get(protocol) or "", timeout_s)
        if strict or isinstance(error, ConfigurationError):
            raise error
        return str(error)


    def not_in_rotation(self, nodes: list[str], timeout_s: float) -> list[str]:
        """Those of `nodes` the entry has not answered from within `timeout_s` (what is
        known to be wrong, no answer as the topology says, still raises)."""
        if not nodes:
            return []
        try:
            self.wait_in_rotation(nodes, timeout_s=timeout_s, strict=True)
        except NotInRotation as e:
            return sorted(e.missing)
        return []


class NotInRotation(HarnessError):
    """Nodes the entry's answers did not come from within a wait (they answered, others did)."""

    def __init__(self, message: str, missing: set[str]) -> None:
        super().__init__(message)
        self.missing = missing


def rotation_error(log: RequestLog, want: set[str], url: str, timeout_s: float) -> HarnessError:
    """Why the entry's answers did not cover `want`: a configuration error when the cluster
    answered but not as the topology says (no identity, another status, TLS), else the nodes
    that never answered."""
    records = log.records
    seen = {r.node for r in records if r.ok}
    if not any(r.ok for r in records):
        last = records[-1].error if records else "no answer"
        return ConfigurationError(f"the entry {url} never answered the topology's request "
                                  f"(http.request) as expected in {timeout_s:.0f} s: {last}")
    if seen == {None}:
        return ConfigurationError(f"the entry {url} answered, but no answer named its node by "
                                  "the topology's identity rule (identity.http)")
    return NotInRotation(f"node(s) {', '.join(sorted(want - seen))} did not answer through {url} "
                         f"within {timeout_s:.0f} s (answers came from {', '.join(sorted(n for n in seen if n))})",
                         want - seen)
