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
from harness.errors import ConfigurationError
from harness.history.requests import RequestRecord


def busiest(records: Iterable[RequestRecord], nodes: Sequence[str]) -> tuple[str, str] | None:
    """The node that served most through the entry, and why it was chosen; None while no
    request through the entry has succeeded (the caller waits, or says so)."""
    served = Counter(r.node for r in records if r.ok and r.endpoint == "entry" and r.node in nodes)
    if not served:
        return None
    victim, count = served.most_common(1)[0]
    return victim, f"busiest in the warm-up: {count} of {sum(served.values())} requests"


def balancing_unit(records: Sequence[RequestRecord], protocol: str) -> tuple[BalancingUnit, str]:
    """What the entry balances, from requests sent over one keep-alive connection: several
    nodes answering means requests (an L7 balancer), one means connections (an L4 one)."""
    seen = {r.node for r in records if r.ok and r.node}
    if not seen:
        failed = next((r.error for r in records if not r.ok), "no node identity")
        raise ConfigurationError(f"the {protocol} entry did not answer with a node identity ({failed})")
    unit: BalancingUnit = "request" if len(seen) > 1 else "connection"
    return unit, f"found: one keep-alive connection saw {len(seen)} node(s) in {len(records)} requests"


def session_affinity(records: Sequence[RequestRecord]) -> tuple[str, str]:
    """The node the entry sent most of these sessions to, and how they were spread."""
    served = Counter(r.node for r in records)
    victim, count = served.most_common(1)[0]
    found = (f"{count} of {len(records)} sessions on {victim}: affinity" if count == len(records)
             else "spread: " + ", ".join(f"{n} {c}" for n, c in served.most_common()))
    return victim, found
