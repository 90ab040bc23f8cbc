"""The contract's properties, declared once: their ids (as DESIGN.md numbers them), what each
promises, and the pytest marker that selects the scenarios proving it.

Everything else is made from this: the pytest markers (`pytest --markers`), the skips of
properties a topology does not claim, the Allure suites, what `harness init` says it cannot
check yet, and the property a check's verdict names by default.
"""

from __future__ import annotations

from enum import StrEnum


class Property(StrEnum):
    """A property of the contract; its value is its id, as verdicts and `claims` write it."""

    C1 = "C1"
    C2 = "C2"
    C3 = "C3"
    C4 = "C4"
    C5 = "C5"
    C6 = "C6"
    C7 = "C7"
    C8 = "C8"
    C9 = "C9"
    C10 = "C10"
    C11 = "C11"
    C12 = "C12"
    C13 = "C13"
    C14 = "C14"

    @property
    def promise(self) -> str:
        """What it promises, in a few words."""
        return PROMISES[self]


PROMISES: dict[Property, str] = {
    Property.C1: "load is balanced",
    Property.C2: "HTTP fails over",
    Property.C3: "HTTPS fails over",
    Property.C4: "network faults are survived",
    Property.C5: "a node rejoins",
    Property.C6: "FTP is not redirected",
    Property.C7: "SMTP is not redirected",
    Property.C8: "a node that cannot serve redirects",
    Property.C9: "administrative services are not redirected",
    Property.C10: "shared state survives failover",
    Property.C11: "nodes are identical",
    Property.C12: "connection pools are per node",
    Property.C13: "capacity scales",
    Property.C14: "nothing is lost or doubled",
}

MARKERS: dict[str, tuple[Property, ...]] = {
    "lb": (Property.C1,),
    "failover": (Property.C2, Property.C3),
    "network": (Property.C4,),
    "rejoin": (Property.C5,),
    "no_redirect": (Property.C6, Property.C7),
    "redirect": (Property.C8,),
    "admin": (Property.C9,),
    "state": (Property.C10,),
    "packages": (Property.C11,),
    "pool": (Property.C12,),
    "scale": (Property.C13,),
    "exactly_once": (Property.C14,),
}
"""The scenarios' marker per property group: the properties its scenarios prove."""
OTHER_MARKERS = {"http": "drives HTTP", "https": "drives HTTPS", "ftp": "drives FTP",
                 "smtp": "drives SMTP",
                 "injects": "the faults a scenario injects, for --plan: kind or kind:link",
                 "soak": "minutes of load and a seeded fault schedule, judged window by window "
                         "(--soak-minutes)"}


def marker_line(name: str) -> str:
    """How pytest lists a scenario marker (`pytest --markers`): a property group's ids and
    promises, e.g. `failover: C2/C3 HTTP fails over; HTTPS fails over`."""
    if name in MARKERS:
        props = MARKERS[name]
        return f"{name}: {'/'.join(props)} {'; '.join(p.promise for p in props)}"
    return f"{name}: {OTHER_MARKERS[name]}"
