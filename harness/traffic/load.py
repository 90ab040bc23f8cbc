"""The pytest side of the load generator: start a Locust driver, let it run, read its log.

    with Load(plan_args, directory) as load:   # traffic runs in a subprocess
        ... inject faults ...
    load.records                               # the request log, once it stopped by itself
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from harness.config import Topology
from harness.errors import HarnessError
from harness.traffic.log import RequestLog, RequestRecord


class Load:
    def __init__(self, topology: Topology, directory: Path, verify: str | bool = True,
                 **plan: Any) -> None:
        self.directory = directory
        stamp = f"{time.monotonic_ns()}"
        self.log_path = directory / f"load-{stamp}.jsonl"
        self.plan_path = directory / f"load-{stamp}.json"
        self.duration_s = float(plan.get("duration_s", 5.0))
        self.plan_path.write_text(json.dumps({
            "topology": json.loads(topology.model_dump_json()), "verify": verify,
            "log": str(self.log_path), **plan}))
        self.proc: subprocess.Popen[str] | None = None
        self.summary: dict[str, int] = {}
        self.log = RequestLog()

    def __enter__(self) -> "Load":
        self.started = time.monotonic()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "harness.traffic.drive", str(self.plan_path)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self._wait_first_request()
        return self

    def _wait_first_request(self, timeout_s: float = 15.0) -> None:
        """Return once traffic flows, so faults land inside the load, not before it."""
        assert self.proc is not None
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.log_path.exists() and self.log_path.stat().st_size > 0:
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.02)
        self._fail("the load generator produced no request")

    def _fail(self, what: str) -> None:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.kill()
        _, err = self.proc.communicate()
        tail = " | ".join((err or "").strip().splitlines()[-3:])
        raise HarnessError(f"{what}: {tail or 'no output'}")

    def __exit__(self, *exc: object) -> None:
        assert self.proc is not None
        try:
            out, err = self.proc.communicate(timeout=self.duration_s + 30)
        except subprocess.TimeoutExpired:
            self._fail("the load generator did not stop by itself")
            return
        if self.proc.returncode != 0:
            raise HarnessError(f"the load generator failed: {' | '.join(err.strip().splitlines()[-3:])}")
        self.summary = json.loads(out.strip().splitlines()[-1])
        self.log = RequestLog.read(self.log_path) if self.log_path.exists() else RequestLog()

    @property
    def records(self) -> list[RequestRecord]:
        return self.log.records

    def records_so_far(self) -> list[RequestRecord]:
        """The requests completed until now, while the load still runs (e.g. its warm-up)."""
        if not self.log_path.exists():
            return []
        text = self.log_path.read_text()
        complete = text[:text.rfind("\n") + 1]  # the writer may be half-way through a line
        return [RequestRecord(**json.loads(line)) for line in complete.splitlines() if line]
