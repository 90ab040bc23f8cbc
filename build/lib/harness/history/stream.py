"""A request log as a stream on disk: rotated, compressed segments, read as they grow.

A soak makes millions of records; neither the load generator nor the checks may hold them.
The writer (in a Locust process) appends JSON lines to `<stem>.000001.jsonl`; past
`rotate_bytes` it starts the next segment and compresses the full one with `gzip` in a
child process (`<stem>.000001.jsonl.gz`, the plain file removed once it is complete). The
reader (the checks' side) keeps its place, segment and offset, and hands out only complete
lines, so it can follow the writer while it writes:

    stream = LogStream(directory / "load-0")
    while soaking:
        for record in stream.read_new(): ...     # what was written since the last call
    for record in LogStream(directory / "load-0").records(): ...   # all of it, again

Segment order is the writer's, so within one stream records come in completion order.
"""

from __future__ import annotations

import gzip
import json
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from harness.history.requests import RequestRecord

ROTATE_BYTES = 16 * 1024 * 1024


def segment(stem: Path, index: int, compressed: bool = False) -> Path:
    return stem.with_name(f"{stem.name}.{index:06d}.jsonl" + (".gz" if compressed else ""))


class RotatingJsonlWriter:
    """A request-log listener writing rotated segments; full ones are gzipped aside."""

    def __init__(self, stem: Path, rotate_bytes: int = ROTATE_BYTES) -> None:
        self.stem, self.rotate_bytes = stem, rotate_bytes
        self.index, self.written = 1, 0
        self._file = segment(stem, 1).open("a", buffering=1)
        self._lock = threading.Lock()
        self._compressors: list[subprocess.Popen[bytes]] = []

    def __call__(self, record: RequestRecord) -> None:
        line = record.to_json() + "\n"
        with self._lock:
            self._file.write(line)
            self.written += len(line)
            if self.written >= self.rotate_bytes:
                self._rotate()

    def _rotate(self) -> None:
        full = segment(self.stem, self.index)
        self.index, self.written = self.index + 1, 0
        # the next segment exists before the full one is closed: a reader that sees it knows
        # the one before is complete
        self._file, old = segment(self.stem, self.index).open("a", buffering=1), self._file
        old.close()
        self._compressors = [p for p in self._compressors if p.poll() is None]
        self._compressors.append(subprocess.Popen(["gzip", "-1", "-f", str(full)]))

    def close(self) -> None:
        self._file.close()
        for proc in self._compressors:
            proc.wait()


class LogStream:
    """Reads a rotated log from where it left off; only complete lines."""

    def __init__(self, stem: Path) -> None:
        self.stem = stem
        self.index = 1
        self._file: BinaryIO | None = None  # the segment being read, kept open
        self._partial = b""  # the start of a line not yet complete

    def read_new(self, max_bytes: int = 1 << 20) -> list[RequestRecord]:
        """The complete records written since the last call, about `max_bytes` of them at
        most (call again until it returns none to catch up)."""
        while True:
            complete = self._exists(self.index + 1)  # checked first: then this one is whole
            chunk = self._read(max_bytes)
            text = self._partial + chunk
            end = text.rfind(b"\n") + 1
            self._partial = text[end:]
            records = [RequestRecord(**json.loads(line)) for line in text[:end].splitlines() if line]
            if len(chunk) < max_bytes and complete:
                self._next_segment()
                if not records:
                    continue
            return records

    def records(self) -> Iterator[RequestRecord]:
        """Every record from the first segment on, a chunk at a time."""
        stream = LogStream(self.stem)
        try:
            while batch := stream.read_new():
                yield from batch
        finally:
            stream.close()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def _next_segment(self) -> None:
        self.close()
        self.index, self._partial = self.index + 1, b""

    def _exists(self, index: int) -> bool:
        return segment(self.stem, index).exists() or segment(self.stem, index, True).exists()

    def _read(self, size: int) -> bytes:
        if self._file is None:
            try:  # still plain: the open file stays readable when gzip removes it
                self._file = segment(self.stem, self.index).open("rb")
            except FileNotFoundError:
                try:
                    self._file = gzip.open(segment(self.stem, self.index, True), "rb")
                except FileNotFoundError:
                    return b""
        return self._file.read(size)

    def bytes_on_disk(self) -> int:
        return sum(p.stat().st_size for p in self.stem.parent.glob(f"{self.stem.name}.*.jsonl*")
                   if p.exists())
