"""Locust users for the four protocols, built on `harness.traffic.clients`.

Imports Locust (and so gevent's monkey-patching): only Locust processes import this module,
never the pytest process. Following Locust's `contrib` clients, each request fires
`events.request` once; the request record rides in its `context`, so the request log is one
more listener on the event and cannot disagree with Locust's stats.
"""

from __future__ import annotations

import itertools
import os
import uuid
from collections.abc import Iterator
from typing import Any, ClassVar

from locust import User, constant_throughput, events, task
from locust.env import Environment

from harness.config import Protocol, Topology
from harness.evidence import Call
from harness.traffic.clients import ENTRY, FtpClient, HttpClient, SmtpClient, wire_transport
from harness.history.requests import JsonlWriter, RequestRecord
from harness.history.stream import RotatingJsonlWriter

def fire(environment: Environment, record: RequestRecord) -> None:
    """The sink every client of a Locust user writes into."""
    environment.events.request.fire(
        request_type=record.protocol.upper(), name=record.operation,
        response_time=record.duration * 1000, response_length=0,
        exception=None if record.ok else RuntimeError(record.error or "failed"),
        context={"record": record, "node": record.node})


def request_log(path: os.PathLike[str] | str,
                rotate_bytes: int | None = None) -> JsonlWriter | RotatingJsonlWriter:
    """A writer of request records to `path` as JSON lines (with `rotate_bytes`: to rotated,
    compressed segments named after it)."""
    from pathlib import Path

    return JsonlWriter(Path(path)) if rotate_bytes is None else RotatingJsonlWriter(Path(path), rotate_bytes)


def attach_request_log(environment: Environment, path: os.PathLike[str] | str,
                       rotate_bytes: int | None = None) -> JsonlWriter | RotatingJsonlWriter:
    """Write every request's record to `path` (`request_log`) as this process's users fire them."""
    writer = request_log(path, rotate_bytes)

    def on_request(context: dict[str, Any], **_: Any) -> None:
        record = context.get("record") if context else None
        if isinstance(record, RequestRecord):
            writer(record)

    environment.events.request.add_listener(on_request)
    return writer


class ClusterUser(User):
    """Base: a topology, a sink into Locust's events, and the node this user addresses."""

    abstract = True
    topology: ClassVar[Topology]
    verify: ClassVar[str | bool] = True
    rate: ClassVar[float] = 5.0
    wait_time = constant_throughput(5.0)
    numbers: ClassVar[Iterator[int]] = itertools.count()

    def __init__(self, environment: Environment) -> None:
        super().__init__(environment)
        self.number = next(type(self).numbers)
        nodes = self.topology.node_ids
        self.node = nodes[self.number % len(nodes)]

    def sink(self, record: RequestRecord) -> None:
        fire(self.environment, record)

    @classmethod
    def configured(cls, name: str | None = None, **attributes: Any) -> type["ClusterUser"]:
        """A concrete subclass with these class attributes (topology, rate, service, ...);
        `name` tells it apart from others of the same kind in one Locust run."""
        rate = attributes.get("rate", cls.rate)
        return type(name or cls.__name__, (cls,), {"abstract": False, "wait_time": constant_throughput(rate),
                                                   "numbers": itertools.count(), **attributes})


class HttpServiceUser(ClusterUser):
    """Calls one service through the cluster entry (or one node) over HTTP or HTTPS.

    Over `harness.traffic.wire`, not geventhttpclient (FastHttpUser's transport):
    geventhttpclient silently resends a request whose pooled connection the balancer closed,
    so a balancer that drops requests of a dead node (the `lb_no_redispatch` mutant) looked
    sound. The load generator must see what clients see: one attempt, one record.
    """

    abstract = True
    protocol: ClassVar[Protocol] = "http"
    service: ClassVar[str | None] = None
    """an `/invoke/` service to call (capacity runs); None: `evidence_request`, else the
    topology's own request (`http.request`)"""
    evidence_request: ClassVar[Call | None] = None
    """an evidence request of the topology (`{key}`: the idempotency key when keyed)"""
    params: ClassVar[dict[str, str]] = {}
    endpoint: ClassVar[str] = ENTRY
    keyed: ClassVar[bool] = False
    fresh_connections: ClassVar[bool] = False

    def on_start(self) -> None:
        self.client = HttpClient(self.topology, self.sink, verify=self.verify,
                                 transport=wire_transport(self.topology, self.verify,
                                                          self.fresh_connections))

    @task
    def call(self) -> None:
        key = uuid.uuid4().hex if self.keyed else None
        if self.evidence_request is not None:
            self.client.send(self.evidence_request, endpoint=self.endpoint, values={"key": key or ""},
                             protocol=self.protocol, key=key)
            return
        if self.service is None:
            self.client.request(endpoint=self.endpoint, protocol=self.protocol, key=key)
            return
        params = {**self.params, "key": key} if key else self.params
        self.client.call(self.service, endpoint=self.endpoint, protocol=self.protocol,
                         params=params, key=key)


class FtpUploadUser(ClusterUser):
    """Uploads files to one node's FTP endpoint, a session per file (connect step timed)."""

    abstract = True
    size: ClassVar[int] = 1024

    def on_start(self) -> None:
        self.client = FtpClient(self.topology, self.sink)

    @task
    def upload(self) -> None:
        self.client.upload(self.node, f"{uuid.uuid4().hex}.dat", os.urandom(self.size))


class SmtpSendUser(ClusterUser):
    """Sends messages to one node's SMTP endpoint."""

    abstract = True

    def on_start(self) -> None:
        self.client = SmtpClient(self.topology, self.sink)

    @task
    def send(self) -> None:
        self.client.send(self.node, uuid.uuid4().hex)


__all__ = ["ClusterUser", "FtpUploadUser", "HttpServiceUser", "SmtpSendUser",
           "attach_request_log", "events", "fire", "request_log"]
