"""Which node a fault hits and what the entry balances, decided from what the traffic saw.

Pure functions of request records, so each choice is unit-tested and the reason for it can
be reported: the busiest node of a warm-up (a victim without traffic proves nothing), the
balancing unit (does one keep-alive connection see several nodes?), and the node an entry
sends this client's FTP or SMTP sessions to (a balancer by source address sends all to one).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence

from harness.config import BalancingUnit
from harness.history.requests import ENTRY, RequestRecord


def busiest(records: Iterable[RequestRecord], nodes: Sequence[str]) -> tuple[str, str] | None:
    """The node that served most through the entry, and why it was chosen; None while no
    request through the entry has succeeded (the caller waits, or says so)."""
    served = Counter(r.node for r in records if r.ok and r.endpoint == ENTRY and r.node in nodes)
    if not served:
        return None
    victim, count = served.most_common(1)[0]
    return victim, f"busiest in the warm-up: {count} of {sum(served.values())} requests"


def balancing_unit(kept: Sequence[str], fresh: Sequence[str]) -> tuple[BalancingUnit | None, str]:
    """What the entry balances, from the nodes that answered over one keep-alive connection
    (`kept`) and over a fresh connection each (`fresh`): several nodes on one connection is
    requests (an L7 balancer); one there but several over fresh connections is connections (an
    L4 one); one node everywhere tells nothing (None: `harness init` leaves it to each run, a
    run judges per connection, which spreads under either balancer)."""
    if len(set(kept)) > 1:
        return "request", f"one keep-alive connection saw {len(set(kept))} nodes in {len(kept)} requests"
    if len(set(fresh)) > 1:
        return "connection", (f"one keep-alive connection saw one node in {len(kept)} requests, "
                              f"fresh connections {len(set(fresh))}")
    only = next(iter([*kept, *fresh]), "?")
    return None, f"all {len(kept) + len(fresh)} answers of the entry came from {only}"


def session_affinity(records: Sequence[RequestRecord]) -> tuple[str, str]:
    """The node the entry sent most of these sessions to, and how they were spread."""
    served = Counter(r.node for r in records)
    victim, count = served.most_common(1)[0]
    found = (f"{count} of {len(records)} sessions on {victim}: affinity" if count == len(records)
             else "spread: " + ", ".join(f"{n} {c}" for n, c in served.most_common()))
    return victim, found
