"""What a load generator process is told to do: groups of users, how long, where to log.

Its own module, free of Locust: the pytest side writes plans (`harness.traffic.load`) and
must not import Locust (it patches the interpreter with gevent); the driver reads them.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from harness.history.requests import ENTRY


class UserGroup(BaseModel):
    """Users of one kind: what they call, where, and how fast each."""

    protocol: str = "http"
    service: str | None = None  # an /invoke/ service; None: `call`, else the topology's request
    call: dict[str, Any] | None = None  # an evidence request (harness.evidence.Call)
    endpoint: str = ENTRY
    keyed: bool = False
    fresh_connections: bool = False
    users: int = 4
    rate: float = 10.0


class StepSchedule(BaseModel):
    """A stepped load (a saturation search): every `seconds`, each group's users again, up to
    `count` steps; each step's record goes to the plan's `steps_log`."""

    seconds: float
    count: int


DEFAULT_MASTER = "127.0.0.1:5557"


class Distributed(BaseModel):
    """A load made by workers on other machines (Locust's distributed mode): the driver is
    the master, listening at `bind`:`port`, and waits up to `wait_s` for `expect` workers."""

    expect: int
    bind: str = "127.0.0.1"
    port: int = 5557
    wait_s: float = 30.0

    @property
    def address(self) -> str:
        return f"{self.bind}:{self.port}"

    @classmethod
    def at(cls, address: str, expect: int, wait_s: float = 30.0) -> "Distributed":
        """From HOST[:PORT] (the port defaults to Locust's 5557); ValueError naming it."""
        host, colon, port = address.rpartition(":")
        if not colon:
            return cls(expect=expect, bind=address, wait_s=wait_s)
        if not host or not port.isdigit():
            raise ValueError(f"{address!r} is not HOST or HOST:PORT")
        return cls(expect=expect, bind=host, port=int(port), wait_s=wait_s)


class LoadPlan(BaseModel):
    topology: dict[str, Any]
    groups: list[UserGroup]
    """with `steps`, the users each step adds"""
    duration_s: float = 5.0
    max_requests: int = 10_000
    verify: str | bool = True
    log: str
    rotate_bytes: int | None = None  # a rotated, compressed log (harness.history.stream)
    steps: StepSchedule | None = None
    steps_log: str | None = None  # where a stepped load writes its steps (harness.history.steps)
    name: str = "load process"  # this generator, as the steps log names it
    workers: Distributed | None = None  # made by workers elsewhere, this process their master
