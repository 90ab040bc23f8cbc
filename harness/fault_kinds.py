"""Faults as values, and the one vocabulary of their kinds.

Chaos Mesh's way: a fault is a value (what, on which node and link, how hard, for how long)
that one injector applies and always heals (`harness.injector.FaultInjector`). Every kind is
described here once: whether it takes the whole node or one of its links, how hard it hits
(the attributes scenarios and the soak use, hard enough that a balancer that does not route
around the node fails C4), and what each engine makes of it: a Toxiproxy toxic (a cut
disables the proxy instead) and what the kernel needs (iptables, tbf or netem; none: it is
Toxiproxy's alone). The nemesis draws from it, the engines and the probe read it, the checks
read the `FaultKind` of each event on the timeline, and the README's tables name the same.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from harness.history.timeline import FaultKind
from harness.history.requests import ENTRY

KernelNeed = Literal["iptables", "tbf", "netem"]


@dataclass(frozen=True)
class Kind:
    """What a fault kind is, and what the engines make of it."""

    summary: str
    attributes: dict[str, float] = field(default_factory=dict)
    """how hard it hits: Toxiproxy's toxic attributes (the kernel reads `rate`, `latency`)"""
    toxic: bool = False
    """Toxiproxy has a toxic of this name (a cut disables the proxy instead)"""
    kernel: KernelNeed | None = None
    """what the kernel engine needs for it; None: Toxiproxy only"""
    nemesis: bool = False
    """the soak may draw it"""
    control: tuple[str, ...] = ()
    """a node fault's control actions (`nodes[].control`): the one that applies it and the
    one that heals it"""


KINDS: dict[FaultKind, Kind] = {
    FaultKind.KILL: Kind("SIGKILL (docker kill) of the node, restarted when the fault ends", nemesis=True,
                         control=("kill", "restart")),
    FaultKind.PAUSE: Kind("SIGSTOP (docker pause): the node holds connections, answers nothing", nemesis=True,
                          control=("pause", "resume")),
    FaultKind.RESTART: Kind("the backend's restart, as long as it takes", nemesis=True, control=("restart",)),
    FaultKind.PARTITION: Kind("the node and one peer (the balancer's host, or another node's) "
                              "cannot reach each other: every packet between them dropped, both "
                              "ways", kernel="iptables"),
    FaultKind.UNAVAILABLE: Kind("the node answers HTTP 503 to everything (its maintenance "
                                "switch), up and reachable", control=("unavailable", "available")),
    FaultKind.CUT: Kind("the link refuses connections with a TCP reset",
                        kernel="iptables", nemesis=True),
    FaultKind.LATENCY: Kind("3 s of latency, 100 ms jitter", {"latency": 3000, "jitter": 100},
                            toxic=True, kernel="netem", nemesis=True),
    FaultKind.TIMEOUT: Kind("a black hole: data is dropped (DROP)", {"timeout": 0}, toxic=True,
                            kernel="iptables", nemesis=True),
    FaultKind.RESET_PEER: Kind("connections reset", {"timeout": 0}, toxic=True, kernel="iptables",
                               nemesis=True),
    FaultKind.BANDWIDTH: Kind("1 KB/s", {"rate": 1}, toxic=True, kernel="tbf", nemesis=True),
    FaultKind.SLICER: Kind("data sliced into 16-byte pieces, 20 ms apart",
                           {"average_size": 16, "size_variation": 8, "delay": 20000}, toxic=True),
    FaultKind.LIMIT_DATA: Kind("the connection closed after 64 bytes", {"bytes": 64}, toxic=True),
    # where netem (its `loss`) is missing: iptables' statistic match drops at random. Four
    # in five, not one in two: at half, TCP's retransmits got most requests through within a
    # 2 s server timeout, and a balancer that never retries was caught in 3 of 4 runs; at
    # four in five, in 4 of 4 (11 failed of ~110), a sound one passing 6 of 6 (0 failed)
    FaultKind.LOSS: Kind("four in five of the link's packets dropped at random (iptables statistic)",
                         {"probability": 0.8}, kernel="iptables", nemesis=True),
}

NODE_FAULTS = tuple(k for k in FaultKind if k.takes_the_node)
PEER_FAULTS = (FaultKind.PARTITION,)
"""network faults between a node and a peer (the `link` names the peer), not on a link"""
NETWORK_FAULTS = tuple(k for k in FaultKind if not k.takes_the_node
                       and k not in (FaultKind.UNAVAILABLE, *PEER_FAULTS))
"""network faults on one of a node's links"""
NEMESES = tuple(k for k in FaultKind if KINDS[k].nemesis)
DEFAULT_NEMESIS = (FaultKind.KILL, FaultKind.PAUSE, FaultKind.RESTART, FaultKind.CUT,
                   FaultKind.LATENCY, FaultKind.RESET_PEER)
"""What a soak injects unless told (`--nemesis`): those of them the cluster can inject."""
WEB_LINKS = ("http", "https")
"""The links a network fault of the nemesis hits (drawn per fault)."""
CONTROL_ACTIONS = tuple(dict.fromkeys(a for k in KINDS.values() for a in k.control))
"""every action `nodes[].control` may give: kill, restart, pause, resume, unavailable, available"""


def by_toxiproxy(kind: FaultKind) -> bool:
    """Whether a network fault of `kind` goes through the Toxiproxy server where the cluster
    has one (`--network-faults auto`): a cut and every toxic do; kinds only the kernel has
    (packet loss) go to kernel rules."""
    spec = KINDS[kind]
    return kind == FaultKind.CUT or spec.toxic or not spec.kernel


def failover_link(kind: FaultKind | str, protocol: str) -> str | None:
    """What a failover fault of `kind` hits for `protocol`'s traffic: a cut, the node's link
    of that protocol; a partition, everything between the node and the balancer's host; a
    node fault, the node (None)."""
    return {FaultKind.CUT: protocol, FaultKind.PARTITION: ENTRY}.get(FaultKind(kind))


@dataclass(frozen=True)
class Fault:
    """One fault: `kind` on `node` (and its `link`, for a network fault), hitting as hard as
    `attributes` say, for `seconds` (None: as long as the body that injects it runs)."""

    kind: FaultKind
    node: str
    link: str | None = None
    attributes: tuple[tuple[str, float], ...] = ()
    seconds: float | None = None

    @classmethod
    def of(cls, kind: FaultKind | str, node: str, link: str | None = None,
           seconds: float | None = None) -> "Fault":
        """`kind` on `node` as hard as the vocabulary says."""
        kind = FaultKind(kind)
        return cls(kind, node, link, tuple(KINDS[kind].attributes.items()), seconds)

    @property
    def options(self) -> dict[str, float]:
        return dict(self.attributes)

    def __str__(self) -> str:
        if self.kind in PEER_FAULTS:
            return f"{self.kind} of {self.node} from {self.link}"
        return f"{self.kind} {self.node}/{self.link}" if self.link else f"{self.kind} {self.node}"
