"""The master's side of a distributed load: workers admitted, their clocks measured, their
records placed on the controller's timeline.

Locust's distributed mode is the engine (`MasterRunner`: workers connect, the master tells
them how many users to run, heartbeats notice one that goes quiet); this module adds the
harness's own messages to it, as Locust's "custom messages" let a locustfile do:

    worker -> master   harness_hello    {version, name}       on connecting
    master -> worker   harness_plan     {topology, groups, verify, ca_pem, stepped}
                       harness_refused  {reason}               a version that is not ours
    master -> worker   harness_clock    {sent}                 NTP-style, at the start and end
    worker -> master   harness_clock    {sent, worker}
    worker -> master   harness_records  {records, cpu}         batched, a few a second
    master -> worker   harness_stop     {}                     the load is over
    worker -> master   harness_done     {}                     its users stopped, all sent

(Locust's own "stop" would make a worker leave the master's list, and its clock could not be
measured again; the master ends with Locust's "quit", which every worker then obeys.)

A worker's records carry its own monotonic times; the master places them on its own (the
controller's, the fault timeline's) with the offset measured when the load started
(`harness.history.clocks`), writes them to the one request log, and reports each worker's
offset, bound and drift when the load ends. Imported only by the driver process.
"""

from __future__ import annotations

import sys
import time
from collections import deque
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import gevent
from gevent.event import Event
from locust.env import Environment
from locust.runners import MasterRunner

from harness.history.clocks import Exchange, Offset, WorkerClock, estimate
from harness.history.requests import RequestRecord
from harness.traffic.plan import LoadPlan
from harness.version import VERSION

CPU_READINGS = 480  # per worker: two minutes of readings, four a second
CLOCK_EXCHANGES = 8
CLOCK_REPLY_S = 2.0  # the longest an exchange is waited for
DONE_WAIT_S = 30.0  # after stop: users finishing their request in flight, the last batch


def refusal(master_version: str, worker_version: str, worker: str) -> str | None:
    """Why a worker may not join (one sentence), or None: it must run the master's version."""
    if worker_version == master_version:
        return None
    return (f"load worker {worker} runs harness {worker_version}, the master harness "
            f"{master_version}: install {master_version} there")


class Master:
    """Admits workers, measures their clocks, and receives their records and CPU readings."""

    def __init__(self, env: Environment, runner: MasterRunner, plan: LoadPlan,
                 sink: Callable[[RequestRecord], None]) -> None:
        assert plan.workers is not None
        self.env, self.runner, self.plan, self.sink = env, runner, plan, sink
        self.names: dict[str, str] = {}  # admitted client id -> the worker's name
        self.refused: list[str] = []
        self.clocks: dict[str, WorkerClock] = {}
        # client -> its recent CPU readings: (controller time, CPU seconds so far)
        self.cpu: dict[str, deque[tuple[float, float]]] = {}
        self.done: set[str] = set()
        self._exchanges: dict[str, list[Exchange]] = {}
        self._replied = Event()
        for kind, handler in (("harness_hello", self._hello), ("harness_clock", self._clock),
                              ("harness_records", self._records), ("harness_done", self._done)):
            runner.register_message(kind, handler)

    # -- admission ---------------------------------------------------------------------------

    def _hello(self, environment: Environment, msg: Any, **_: Any) -> None:
        name = str(msg.data.get("name") or msg.node_id)
        why = refusal(VERSION, str(msg.data.get("version")), name)
        if why:
            self.refused.append(why)
            self.runner.send_message("harness_refused", {"reason": why}, client_id=msg.node_id)
            return
        self.names[msg.node_id] = name
        self.runner.send_message("harness_plan", self._plan_for_workers(), client_id=msg.node_id)

    def _plan_for_workers(self) -> dict[str, Any]:
        """What a worker needs to build the users: the CA's certificate travels as text (its
        path is this machine's), the topology as data."""
        verify = self.plan.verify
        ca_pem = Path(verify).read_text() if isinstance(verify, str) else None
        return {"topology": self.plan.topology, "groups": [g.model_dump() for g in self.plan.groups],
                "verify": verify if isinstance(verify, bool) else True, "ca_pem": ca_pem,
                "stepped": self.plan.steps is not None}

    def wait_for_workers(self) -> None:
        """Until `expect` workers are admitted and every connected worker is (a refused one
        has left), for at most the plan's wait; else exit 2 with one sentence."""
        spec = self.plan.workers
        assert spec is not None
        deadline = time.monotonic() + spec.wait_s
        while time.monotonic() < deadline and not self.refused:
            connected = set(self.runner.clients.keys())
            if len(self.names) >= spec.expect and connected <= set(self.names):
                return
            gevent.sleep(0.05)
        if self.refused:  # known to be wrong: said at once, not waited out
            print(f"{self.refused[0]} (the run's master at {spec.address})", file=sys.stderr)
        else:
            came = ", ".join(sorted(self.names.values())) or "none"
            print(f"only {len(self.names)} of {spec.expect} load workers came to the master at "
                  f"{spec.address} within {spec.wait_s:g} s (came: {came}); start them with "
                  f"`harness worker --master {spec.address}`", file=sys.stderr)
        sys.exit(2)

    # -- clocks ------------------------------------------------------------------------------

    def _clock(self, environment: Environment, msg: Any, **_: Any) -> None:
        received = time.monotonic()
        self._exchanges.setdefault(msg.node_id, []).append(
            Exchange(float(msg.data["sent"]), float(msg.data["worker"]), received))
        self._replied.set()

    def _measure(self, client: str) -> Offset:
        self._exchanges[client] = []
        for _ in range(CLOCK_EXCHANGES):
            self._replied.clear()
            self.runner.send_message("harness_clock", {"sent": time.monotonic()}, client_id=client)
            self._replied.wait(timeout=CLOCK_REPLY_S)
        if not self._exchanges[client]:
            print(f"load worker {self.names[client]} never answered a clock exchange within "
                  f"{CLOCK_REPLY_S:g} s", file=sys.stderr)
            sys.exit(2)
        return estimate(self._exchanges[client])

    def measure_clocks(self) -> None:
        """Each worker's offset before its users start: its records are placed with it."""
        for client, name in self.names.items():
            self.clocks[client] = WorkerClock(name, self._measure(client))

    def remeasure_clocks(self) -> None:
        """Each worker's offset again at the end: how far it moved bounds the placement."""
        for client, clock in list(self.clocks.items()):
            if client in self.runner.clients:
                self.clocks[client] = WorkerClock(clock.worker, clock.start, self._measure(client))

    # -- records and CPU ---------------------------------------------------------------------

    def _records(self, environment: Environment, msg: Any, **_: Any) -> None:
        clock = self.clocks.get(msg.node_id)
        if clock is None:
            return  # not admitted, or sending before its clock was measured: no place for it
        to_here = clock.start.to_controller
        worker_time, cpu_s = msg.data["cpu"]
        self.cpu.setdefault(msg.node_id, deque(maxlen=CPU_READINGS)).append((to_here(worker_time), cpu_s))
        for fields in msg.data["records"]:
            fields["start_mono"] = to_here(fields["start_mono"])
            fields["end_mono"] = to_here(fields["end_mono"])
            fields["generator"] = clock.worker
            self.sink(RequestRecord(**fields))

    def busiest_since(self, since: float) -> tuple[float | None, str]:
        """The busiest worker's CPU demand (cores) between its first and last readings since
        `since` (the controller's time), and its name; None without two readings."""
        demands = {}
        for client, readings in self.cpu.items():
            mine = [r for r in readings if r[0] >= since]
            if len(mine) >= 2 and mine[-1][0] > mine[0][0]:
                demands[self.names[client]] = (mine[-1][1] - mine[0][1]) / (mine[-1][0] - mine[0][0])
        if len(demands) < len(self.names):
            return None, ""
        busiest = max(demands, key=lambda w: demands[w])
        return demands[busiest], f"worker {busiest}"

    def _done(self, environment: Environment, msg: Any, **_: Any) -> None:
        self.done.add(msg.node_id)

    def finish(self) -> None:
        """Stop the users, take every worker's last records, measure the clocks again."""
        for client in self.clocks:
            self.runner.send_message("harness_stop", {}, client_id=client)
        deadline = time.monotonic() + DONE_WAIT_S
        while not set(self.clocks) <= self.done and time.monotonic() < deadline:
            gevent.sleep(0.05)
        self.remeasure_clocks()

    def summary(self) -> list[dict[str, Any]]:
        return [{**asdict(c), "drift_s": c.drift_s, "error_s": c.error_s} for c in self.clocks.values()]
