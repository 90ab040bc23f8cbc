"""The pytest side of the load generator: start Locust drivers, let them run, read their logs.

    with Load(topology, directory, users=8, processes=2) as load:   # traffic in subprocesses
        ... inject faults ...
    load.records                     # the merged request log, once they stopped by themselves

With `processes` > 1 the users are shared out over that many driver processes (Locust is one
core per process), each writing its own log; the records are merged in time order, so the
checks see one request log whatever generated it. A stepped load (`steps`: a saturation
search) also leaves each process's record of its steps, merged by `steps()`. With `workers`
the users run in load workers on other machines and the one driver process is their master:
their records arrive placed on this machine's clock, and `clocks` says how well each
worker's clock was known.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from harness.config import Topology
from harness.errors import HarnessError, WorkersMissing
from harness.history.clocks import Offset, WorkerClock
from harness.history.requests import RequestLog, RequestRecord, parse_lines
from harness.history.steps import LoadStep, merge_steps, read_steps
from harness.history.stream import LogStream, segment
from harness.traffic.plan import Distributed, LoadPlan, StepSchedule, UserGroup


def share(total: int, parts: int) -> list[int]:
    """`total` split over `parts` as evenly as can be (the first ones take the remainder)."""
    return [total // parts + (i < total % parts) for i in range(parts)]


class Load:
    def __init__(self, topology: Topology, directory: Path, verify: str | bool = True,
                 processes: int = 1, groups: list[dict[str, Any]] | None = None,
                 rotate_bytes: int | None = None, steps: StepSchedule | None = None,
                 workers: Distributed | None = None, **plan: Any) -> None:
        """`groups`: users of several kinds in each process (`drive.UserGroup`); without
        them, `plan` holds one group's fields beside the duration and request limit.
        `rotate_bytes`: stream the logs to rotated, compressed segments (read them with
        `streams()`; `records` stays empty, so memory stays flat however long it runs).
        `steps`: each group's users are those each step adds (the duration is the steps').
        `workers`: the users run in that many load workers, one driver their master."""
        if processes < 1:
            raise HarnessError(f"--load-processes must be at least 1, not {processes}")
        group_fields = set(UserGroup.model_fields)
        if groups is None:
            groups = [{k: plan.pop(k) for k in list(plan) if k in group_fields}]
        if unknown := set(plan) - {"duration_s", "max_requests"}:
            raise TypeError(f"Load got unknown plan fields {sorted(unknown)}")
        parts = [UserGroup.model_validate(g) for g in groups]
        processes = 1 if workers else min(processes, max(g.users for g in parts))  # each has users
        self.workers = workers
        stamp = f"{time.monotonic_ns()}"
        self.duration_s = steps.seconds * steps.count if steps else float(plan.get("duration_s", 5.0))
        self.streaming = rotate_bytes is not None
        suffix = "" if self.streaming else ".jsonl"
        self.log_paths = [directory / f"load-{stamp}-{i}{suffix}" for i in range(processes)]
        self.plan_paths = [directory / f"load-{stamp}-{i}.json" for i in range(processes)]
        self.steps_paths = [directory / f"load-{stamp}-{i}.steps.jsonl" for i in range(processes)] if steps else []
        limits = share(int(plan.get("max_requests", 10_000)), processes)
        for i, (path, log, limit) in enumerate(zip(self.plan_paths, self.log_paths, limits, strict=True)):
            mine = [g.model_copy(update={"users": share(g.users, processes)[i]}) for g in parts]
            path.write_text(LoadPlan(
                topology=json.loads(topology.model_dump_json()), verify=verify,
                duration_s=self.duration_s, groups=[g for g in mine if g.users],
                max_requests=limit, log=str(log), rotate_bytes=rotate_bytes, steps=steps,
                steps_log=str(self.steps_paths[i]) if steps else None,
                name=f"load process {i + 1}" if processes > 1 else "load process",
                workers=workers).model_dump_json())
        self.procs: list[subprocess.Popen[str]] = []
        self.stopped = False
        self.summary: dict[str, int] = {}
        self.clocks: list[WorkerClock] = []
        self.log = RequestLog()
        self._read: dict[Path, tuple[int, list[RequestRecord]]] = {}  # records_so_far's place
        self._reading = threading.Lock()
        """records_so_far is asked from two threads (the scenario's and the stop conditions'
        watch): one place in the logs, advanced by one at a time, or both count the same lines"""

    def __enter__(self) -> "Load":
        self.started = time.monotonic()
        self.procs = [subprocess.Popen([sys.executable, "-m", "harness.traffic.drive", str(path)],
                                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                      for path in self.plan_paths]
        self._wait_first_request()
        return self

    def _wait_first_request(self, timeout_s: float = 15.0) -> None:
        """Return once traffic flows, so faults land inside the load, not before it (the
        workers of a distributed load waited for first)."""
        deadline = time.monotonic() + timeout_s + (self.workers.wait_s if self.workers else 0)
        while time.monotonic() < deadline:
            if any(p.exists() and p.stat().st_size > 0 for p in self._first_files()):
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
            lines = (err or "").strip().splitlines()
            if proc.returncode == 2 and lines:  # the workers it waited for did not come, or were refused
                raise WorkersMissing(lines[-1])
            tails += lines[-3:]
        raise HarnessError(f"{what}: {' | '.join(tails) or 'no output'}")

    def __exit__(self, exc_type: type[BaseException] | None, *exc: object) -> None:
        if exc_type is not None:  # Ctrl-C or a failure inside: do not wait the plan out
            self.stop()
        if self.stopped:
            return
        summaries = []
        for proc in self.procs:
            try:
                out, err = proc.communicate(timeout=self.duration_s + 60)
            except subprocess.TimeoutExpired:
                self._fail("the load generator did not stop by itself")
                return
            if proc.returncode != 0:
                lines = err.strip().splitlines()
                if proc.returncode == 2 and lines:
                    raise WorkersMissing(lines[-1])
                raise HarnessError(f"the load generator failed: {' | '.join(lines[-3:])}")
            summaries.append(json.loads(out.strip().splitlines()[-1]))
        self.clocks = [WorkerClock(c["worker"], Offset(**c["start"]), Offset(**c["end"]) if c["end"] else None)
                       for s in summaries for c in s.pop("clocks", [])]
        self.summary = {k: sum(s[k] for s in summaries) for k in summaries[0]}
        if not self.streaming:
            self.log = RequestLog(self._merged(p.read_text() for p in self.log_paths if p.exists()))

    def _first_files(self) -> list[Path]:
        return [segment(p, 1) if self.streaming else p for p in self.log_paths]

    def streams(self) -> list[LogStream]:
        """Readers of the streamed logs, one per process (with `rotate_bytes`)."""
        assert self.streaming, "records_so_far and records serve an unstreamed load"
        return [LogStream(p) for p in self.log_paths]

    def running(self) -> bool:
        return any(proc.poll() is None for proc in self.procs)

    def end_now(self) -> None:
        """End the load before its planned duration, as if it had run out: the drivers stop
        their users and the records are read on exit as usual (a scenario that has seen what
        its check needs)."""
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)

    def stop(self) -> None:
        """Stop the drivers now (Ctrl-C, or a soak that ends early): their logs stay."""
        self.stopped = True
        for proc in self.procs:
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    @property
    def records(self) -> list[RequestRecord]:
        return self.log.records

    def records_so_far(self) -> list[RequestRecord]:
        """The requests completed until now, while the load still runs (e.g. its warm-up);
        each call reads only what was written since the last."""
        with self._reading:
            for path in self.log_paths:
                if not path.exists():
                    continue
                offset, records = self._read.setdefault(path, (0, []))
                with path.open("rb") as f:
                    f.seek(offset)
                    data = f.read()
                whole = data[:data.rfind(b"\n") + 1]  # a writer may be half-way through a line
                records.extend(parse_lines(whole.decode()))
                self._read[path] = (offset + len(whole), records)
            return sorted((r for _, records in self._read.values() for r in records),
                          key=lambda r: r.start_mono)

    def steps(self) -> list[LoadStep]:
        """The steps every process has finished so far, merged (a stepped load)."""
        return merge_steps(read_steps(p) for p in self.steps_paths)

    @staticmethod
    def _merged(texts: Iterable[str]) -> list[RequestRecord]:
        return sorted((r for text in texts for r in parse_lines(text)), key=lambda r: r.start_mono)
