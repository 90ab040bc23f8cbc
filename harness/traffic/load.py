"""The pytest side of the load generator: start Locust drivers, let them run, read their logs.

    with Load(topology, directory, users=8, processes=2) as load:   # traffic in subprocesses
        ... inject faults ...
    load.records                     # the merged request log, once they stopped by themselves

With `processes` > 1 the users are shared out over that many driver processes (Locust is one
core per process), each writing its own log; the records are merged in time order, so the
checks see one request log whatever generated it.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from harness.config import Topology
from harness.errors import HarnessError
from harness.traffic.log import RequestLog, RequestRecord, parse_lines


def share(total: int, parts: int) -> list[int]:
    """`total` split over `parts` as evenly as can be (the first ones take the remainder)."""
    return [total // parts + (i < total % parts) for i in range(parts)]


class Load:
    def __init__(self, topology: Topology, directory: Path, verify: str | bool = True,
                 processes: int = 1, **plan: Any) -> None:
        if processes < 1:
            raise HarnessError(f"--load-processes must be at least 1, not {processes}")
        users = int(plan.get("users", 4))
        processes = min(processes, users)  # a process without users would make no request
        stamp = f"{time.monotonic_ns()}"
        self.duration_s = float(plan.get("duration_s", 5.0))
        self.log_paths = [directory / f"load-{stamp}-{i}.jsonl" for i in range(processes)]
        self.plan_paths = [directory / f"load-{stamp}-{i}.json" for i in range(processes)]
        limits = share(int(plan.get("max_requests", 10_000)), processes)
        for path, log, n, limit in zip(self.plan_paths, self.log_paths, share(users, processes), limits,
                                       strict=True):
            path.write_text(json.dumps({
                "topology": json.loads(topology.model_dump_json()), "verify": verify,
                **plan, "users": n, "max_requests": limit, "log": str(log)}))
        self.procs: list[subprocess.Popen[str]] = []
        self.summary: dict[str, int] = {}
        self.log = RequestLog()

    def __enter__(self) -> "Load":
        self.started = time.monotonic()
        self.procs = [subprocess.Popen([sys.executable, "-m", "harness.traffic.drive", str(path)],
                                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                      for path in self.plan_paths]
        self._wait_first_request()
        return self

    def _wait_first_request(self, timeout_s: float = 15.0) -> None:
        """Return once traffic flows, so faults land inside the load, not before it."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if any(p.exists() and p.stat().st_size > 0 for p in self.log_paths):
                return
            if any(proc.poll() is not None for proc in self.procs):
                break
            time.sleep(0.02)
        self._fail("the load generator produced no request")

    def _fail(self, what: str) -> None:
        tails = []
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
            _, err = proc.communicate()
            tails += (err or "").strip().splitlines()[-3:]
        raise HarnessError(f"{what}: {' | '.join(tails) or 'no output'}")

    def __exit__(self, *exc: object) -> None:
        summaries = []
        for proc in self.procs:
            try:
                out, err = proc.communicate(timeout=self.duration_s + 30)
            except subprocess.TimeoutExpired:
                self._fail("the load generator did not stop by itself")
                return
            if proc.returncode != 0:
                raise HarnessError(f"the load generator failed: {' | '.join(err.strip().splitlines()[-3:])}")
            summaries.append(json.loads(out.strip().splitlines()[-1]))
        self.summary = {k: sum(s[k] for s in summaries) for k in summaries[0]}
        self.log = RequestLog(self._merged(p.read_text() for p in self.log_paths if p.exists()))

    @property
    def records(self) -> list[RequestRecord]:
        return self.log.records

    def records_so_far(self) -> list[RequestRecord]:
        """The requests completed until now, while the load still runs (e.g. its warm-up)."""
        texts = []
        for path in self.log_paths:
            if path.exists():
                text = path.read_text()
                texts.append(text[:text.rfind("\n") + 1])  # a writer may be half-way through a line
        return self._merged(texts)

    @staticmethod
    def _merged(texts: Iterable[str]) -> list[RequestRecord]:
        return sorted((r for text in texts for r in parse_lines(text)), key=lambda r: r.start_mono)
