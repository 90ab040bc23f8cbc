"""`pytest scenarios/ --topology FILE --plan`: every fault the selected scenarios would inject,
listed without touching the cluster, as `harness soak --dry-run` lists a soak's schedule.

Each scenario says what it injects: the failover and network scenarios by their parameters
(the kind, and for failover the link `harness.fault_kinds.failover_link` gives it), the others by
their `injects` marker (`kill`, `partition:node`, `cut:store`). For each fault the listing
names the node it would hit (the one `--victim` names, else the busiest in the warm-up: any
of them), how: the node's control command and the one that heals it, a Toxiproxy toxic, or
the kernel's rules and their undo, exactly as the run would give them, or the field that is
missing (the scenario would be skipped, saying so).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from harness.config import Topology
from harness.fault_kinds import KINDS, PEER_FAULTS, by_toxiproxy, failover_link
from harness.history.timeline import FaultKind
from harness.history.requests import ENTRY


@dataclass(frozen=True)
class Injection:
    """One fault a scenario would inject: its kind and what it hits beside the node."""

    kind: FaultKind
    link: str | None = None
    """a protocol, `store`, `entry` (a partition from the balancer's host) or `node` (from
    another node)"""


def injections(params: dict[str, object], marked: list[str]) -> list[Injection]:
    """What a scenario injects, from its parameters and its `injects` marker's arguments
    (`kind` or `kind:link`)."""
    found = [Injection(FaultKind(kind), link or None) for kind, _, link in (m.partition(":") for m in marked)]
    if "fault" in params:  # the failover scenario
        kind = FaultKind(str(params["fault"]))
        found.append(Injection(kind, failover_link(kind, str(params.get("web_protocol", "http")))))
    if "toxic" in params:  # the network scenario
        found.append(Injection(FaultKind(str(params["toxic"])), "http"))
    return found


def _engine(topology: Topology, kind: FaultKind, choice: str) -> str:
    """The engine that would inject a network fault of `kind`: the run's own choice."""
    if choice == "toxiproxy" or (choice == "auto" and topology.toxiproxy and by_toxiproxy(kind)):
        return "toxiproxy"
    return "kernel"


def how(topology: Topology, injection: Injection, node: str, choice: str, log: Path) -> Iterator[str]:
    """The lines that apply `injection` to `node`, and those that heal it."""
    from harness.cluster.external import kernel_scope
    from harness.kernel import NoScope, planned

    kind, spec = injection.kind, KINDS[injection.kind]
    if spec.control:
        lines = {a: topology.node(node).control_line(a) for a in spec.control}
        missing = [a for a, line in lines.items() if line is None]
        if missing:
            yield f"needs `nodes[{node}].control.{missing[0]}` (the scenario is skipped, saying so)"
            return
        yield f"apply: {lines[spec.control[0]]}"
        if len(spec.control) > 1:
            yield f"heal:  {lines[spec.control[1]]}"
        return
    link = injection.link or "http"
    if _engine(topology, kind, choice) == "toxiproxy":
        if not topology.toxiproxy:
            yield "needs `toxiproxy` (--network-faults toxiproxy)"
            return
        proxy = f"{node}-{link}"
        if kind == FaultKind.CUT:
            yield f"apply: Toxiproxy {topology.toxiproxy}: proxy {proxy} disabled"
            yield f"heal:  proxy {proxy} enabled"
        else:
            yield f"apply: Toxiproxy {topology.toxiproxy}: toxic {kind} {spec.attributes} on proxy {proxy}"
            yield f"heal:  the toxic removed from {proxy}"
        return
    if kind in PEER_FAULTS:
        peer = "the balancer's host" if link == ENTRY else "another node"
        yield f"kernel rules on {node}'s host dropping everything from and to {peer}"
    try:
        scope = kernel_scope(topology, node, link if kind not in PEER_FAULTS else "http", log)
    except NoScope as e:
        yield f"{e.reason} (the scenario is skipped, saying so)"
        return
    if kind in PEER_FAULTS:
        return  # its rules need the peer's address, found when it runs
    apply, heal = planned(kind, scope, **spec.attributes)
    yield from (f"apply: {c}" for c in apply)
    yield from (f"heal:  {c}" for c in heal)


def listing(topology: Topology, scenarios: list[tuple[str, list[Injection]]], victim: str,
            choice: str, log: Path) -> str:
    """The plan, a scenario at a time; nothing is run."""
    nodes = topology.node_ids if victim in ("busiest", "all") else [victim]
    who = {"busiest": "the node that served most in the warm-up: one of", "all": "each in turn of"}.get(victim, "")
    lines = [f"the faults of {len(scenarios)} scenario(s) on {topology.name}, nothing run "
             f"(network faults by {choice}):"]
    for name, found in scenarios:
        lines.append(f"\n{name}")
        if not found:
            lines.append("  no fault")
        for injection in found:
            target = f" ({injection.link})" if injection.link else ""
            lines.append(f"  {injection.kind}{target}: {KINDS[injection.kind].summary}")
            lines.append(f"    on {who} {', '.join(nodes)}" if who else f"    on {nodes[0]}")
            for node in nodes:
                lines += [f"    {node}: {line}" for line in how(topology, injection, node, choice, log)]
    return "\n".join(lines)
