"""The mutants: one switch each that breaks one promise of the reference cluster.

They prove that the checks can fail. A mutant lives where its fault would live in a real
deployment: load-balancer mistakes in the generated HAProxy configuration, node mistakes in
the node (all nodes, or only the last one for "one node differs" faults).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from harness.errors import HarnessError
from harness.properties import Property

Where = Literal["lb", "all_nodes", "last_node"]
SOUND = "none"


@dataclass(frozen=True)
class Mutant:
    name: str
    prop: Property
    where: Where
    summary: str
    kills: str
    """pytest marker expression of the scenarios that must fail on this mutant (for a sound
    variant, those that must pass on it)"""
    keyword: str = ""
    """a `-k` expression narrowing `kills` to the scenarios that show the break"""

    @property
    def sound(self) -> bool:
        """A variant that keeps the contract: proof that a check does not cry wolf."""
        return self.prop == SOUND


MUTANTS: tuple[Mutant, ...] = (
    Mutant("lb_skewed", Property.C1, "lb", "HAProxy weights favour the first node 4:1", "lb"),
    Mutant("lb_tcp", SOUND, "lb",
           "sound: HTTPS balanced in TCP mode (TLS passed through, connections balanced)", "lb"),
    Mutant("lb_tcp_skewed", Property.C1, "lb",
           "HTTPS balanced in TCP mode with weights favouring the first node 4:1", "lb and https"),
    Mutant("lb_slow_retry", SOUND, "lb",
           "sound: HAProxy retries a failed node 3 times, 500 ms apart, before another node, "
           "and checks health slowly: failover is late, never lost", "failover"),
    Mutant("lb_no_redispatch", Property.C2, "lb",
           "HAProxy without retries, redispatch or fast health checks (breaks C2, C3, C4)",
           "failover or network"),
    Mutant("lb_passes_503", Property.C2, "lb",
           "HAProxy retries only failed connections (no retry on a 503) and checks nodes by TCP "
           "connect: a node in maintenance answers 503, passed through to clients",
           "failover", keyword="unavailable"),
    Mutant("lb_starves_last_node", Property.C2, "lb",
           "HAProxy sends almost nothing to the last node (weight 1:100) and never redispatches",
           "failover and http"),
    Mutant("lb_holds_paused", Property.C2, "lb",
           "HAProxy waits 10 s for a node's answer and never retries: requests on a paused node "
           "wait until it wakes", "failover and http", keyword="pause"),
    Mutant("never_rejoins", Property.C5, "all_nodes",
           "a restarted node reports unhealthy forever and stays out of rotation", "rejoin"),
    Mutant("ftp_fronted", Property.C6, "lb",
           "each node's FTP endpoint is fronted by the balancer and fails over to a peer",
           "no_redirect and ftp"),
    Mutant("ftp_entry_sticky", SOUND, "lb",
           "sound: FTP at the cluster address, balanced by source address, a dead node's "
           "sessions failing", "no_redirect and ftp"),
    Mutant("ftp_entry_sticky_failover", Property.C6, "lb",
           "FTP at the cluster address, balanced by source address, and a dead node's sessions "
           "sent to another node", "no_redirect and ftp"),
    Mutant("smtp_fronted", Property.C7, "lb",
           "each node's SMTP endpoint is fronted by the balancer and fails over to a peer",
           "no_redirect and smtp"),
    Mutant("redirect_to_any", Property.C8, "all_nodes",
           "a node redirects to any peer, whether or not it can serve the request", "redirect"),
    Mutant("admin_redirected", Property.C9, "all_nodes",
           "redir.cnf lacks the wm.art exclusion, so administrative services are redirected",
           "admin"),
    Mutant("local_cache", Property.C10, "all_nodes",
           "cache and sessions live in the node's memory instead of the shared store", "state"),
    Mutant("package_missing", Property.C11, "last_node",
           "the last node lacks HarnessExtras and ignores its replication", "packages"),
    Mutant("pool_leak", Property.C12, "all_nodes",
           "the connection pool opens a connection per request and never returns it", "pool"),
    Mutant("pool_never_refills", Property.C12, "all_nodes",
           "a restarted node opens no pool connections (an adapter connection left disabled)", "pool"),
    Mutant("lb_ignores_new_nodes", Property.C13, "lb",
           "an added node never enters the balancer's rotation", "scale"),
    Mutant("order_not_idempotent", Property.C14, "all_nodes",
           "the order service ignores the idempotency key and records every call",
           "exactly_once"),
    Mutant("order_acked_before_durable", Property.C14, "all_nodes",
           "the order service answers before it records the order (300 ms later): a node "
           "killed meanwhile loses orders it acknowledged", "exactly_once"),
)


def get_mutant(name: str | None) -> Mutant | None:
    if name is None:
        return None
    for m in MUTANTS:
        if m.name == name:
            return m
    known = ", ".join(m.name for m in MUTANTS)
    raise HarnessError(f"unknown mutant {name!r}; known mutants: {known}")


def node_mutants(mutant: Mutant | None, index: int, count: int) -> list[str]:
    """The mutant switches node number `index` (0-based) of `count` is started with."""
    if mutant is None or mutant.where == "lb":
        return []
    if mutant.where == "last_node" and index != count - 1:
        return []
    return [mutant.name]
