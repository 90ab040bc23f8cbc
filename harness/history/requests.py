"""The request log: one record per request, as JSON lines.

Fields (times in seconds): `protocol` (http, https, ftp, smtp); `operation` (service name,
`connect`, `upload`, `send`); `endpoint` (`entry` or the node id addressed); `url`;
`start_wall` (epoch), `start_mono` and `end_mono` (CLOCK_MONOTONIC, comparable across
processes on one host, so with the fault timeline); `ok`; `status` (HTTP status or FTP/SMTP
reply code); `node` (who served, by the topology's identity rules); `error` (exception class
or reply text); `redirects` (nodes that answered 3xx, in order); `key` (idempotency key);
`detail` (service-specific values, e.g. a counter read); `generator` (the load worker that
sent it, in a distributed load: its times are already on the controller's clock).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ENTRY = "entry"
"""the `endpoint` of a request sent through the cluster's entry (the balancer), where any
node may serve it; every other endpoint is a node id"""


@dataclass
class RequestRecord:
    protocol: str
    operation: str
    endpoint: str
    url: str
    start_wall: float
    start_mono: float
    end_mono: float
    ok: bool
    status: int | None = None
    node: str | None = None
    error: str | None = None
    redirects: list[str] = field(default_factory=list)
    key: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)
    generator: str | None = None

    @property
    def duration(self) -> float:
        return self.end_mono - self.start_mono

    def to_json(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"))


Sink = Callable[[RequestRecord], None]


class RequestLog:
    """Thread-safe, in memory, with listeners (a file writer, Locust's event) on each record."""

    def __init__(self, records: Iterable[RequestRecord] = ()) -> None:
        self._records = list(records)
        self._lock = threading.Lock()
        self.listeners: list[Sink] = []

    def __call__(self, record: RequestRecord) -> None:
        with self._lock:
            self._records.append(record)
        for listener in self.listeners:
            listener(record)

    def __iter__(self) -> Iterator[RequestRecord]:
        return iter(self.records)

    def __len__(self) -> int:
        return len(self._records)

    @property
    def records(self) -> list[RequestRecord]:
        with self._lock:
            return list(self._records)

    def extend(self, records: Iterable[RequestRecord]) -> None:
        for r in records:
            self(r)

    def write(self, path: Path) -> None:
        path.write_text("".join(r.to_json() + "\n" for r in self.records))

    @classmethod
    def read(cls, path: Path) -> "RequestLog":
        return cls(parse_lines(path.read_text()))


def parse_lines(text: str) -> list[RequestRecord]:
    """The records of a JSON-lines request log (complete lines only)."""
    return [RequestRecord(**json.loads(line)) for line in text.splitlines() if line.strip()]


class JsonlWriter:
    """A listener that appends each record to a file as it comes (survives a crash)."""

    def __init__(self, path: Path) -> None:
        self._file = path.open("a", buffering=1)
        self._lock = threading.Lock()

    def __call__(self, record: RequestRecord) -> None:
        with self._lock:
            self._file.write(record.to_json() + "\n")

    def close(self) -> None:
        self._file.close()
