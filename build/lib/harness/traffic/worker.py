"""A load worker: Locust's worker, serving the harness's masters one load after another.

`harness worker --master HOST[:PORT]`, run on a load machine, connects to the master that a
harness run starts for each load (a scenario's, a soak's, a saturation search's), says which
harness it runs, receives the plan, runs the users the master gives it, answers the master's
clock exchanges, and ships its request records in batches (with its CPU reading, for the
saturation search) until the master stops it; then it waits for the next master, for at most
`--idle-timeout`. A worker whose version the master refuses exits 2 with the master's sentence.
The master's side, and the messages, are in `harness.traffic.distributed`.

Started by the harness over SSH (`load.workers` in the topology), it is stopped at the run's
end; started by the user, it serves until Ctrl-C or the idle timeout.
"""

from __future__ import annotations

from locust.env import Environment  # first: Locust must patch before other imports

import os
import signal
import socket
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import gevent
import locust.runners
from gevent.event import Event
from locust.runners import WorkerRunner

from harness.config import Topology
from harness.traffic.cpu import scheduled_seconds
from harness.traffic.drive import STOP_TIMEOUT_S, user_class
from harness.traffic.plan import Distributed, UserGroup
from harness.version import VERSION

SHIP_EVERY_S = 0.25
BATCH_RECORDS = 2000  # a batch goes at once when it holds this many
PLAN_WAIT_S = 5.0
"""a master that has not sent its plan this long after the worker joined is one that was
ending as the worker connected (it answered, then quit): the worker connects again"""
QUIT_GRACE_S = 1.0  # a master that said quit is gone after this (Locust's master waits 0.5 s)


class Worker:
    """The harness's part of one Locust worker's life: the plan, clocks, records."""

    def __init__(self, env: Environment, runner: WorkerRunner, name: str) -> None:
        self.env, self.runner, self.name = env, runner, name
        self.batch: list[dict[str, Any]] = []
        self.refused: str | None = None
        self.planned = Event()
        self._ca: Path | None = None
        for kind, handler in (("harness_plan", self._plan), ("harness_refused", self._refused),
                              ("harness_clock", self._clock), ("harness_stop", self._stop)):
            runner.register_message(kind, handler)
        env.events.request.add_listener(self._request)
        env.events.test_stop.add_listener(self._stopped)
        runner.greenlet.spawn(self._ship_forever)
        runner.send_message("harness_hello", {"version": VERSION, "name": name})

    def _plan(self, environment: Environment, msg: Any, **_: Any) -> None:
        data = msg.data
        verify: str | bool = data["verify"]
        if data["ca_pem"]:  # the cluster's CA, as the master's machine has it
            with tempfile.NamedTemporaryFile("w", prefix="harness-worker-ca-", suffix=".pem",
                                             delete=False) as ca:
                ca.write(data["ca_pem"])
            self._ca, verify = Path(ca.name), ca.name
        topology = Topology.model_validate(data["topology"])
        environment.user_classes = [
            user_class(UserGroup.model_validate(g), topology, verify, i, data["stepped"])
            for i, g in enumerate(data["groups"], 1)]
        self.planned.set()

    def _refused(self, environment: Environment, msg: Any, **_: Any) -> None:
        self.refused = str(msg.data["reason"])
        self.planned.set()
        gevent.spawn(self.runner.quit)

    def _clock(self, environment: Environment, msg: Any, **_: Any) -> None:
        self.runner.send_message("harness_clock", {"sent": msg.data["sent"], "worker": time.monotonic()})

    def _stop(self, environment: Environment, msg: Any, **_: Any) -> None:
        gevent.spawn(self.runner.stop)  # the users finish their request in flight; then _stopped

    def _request(self, context: dict[str, Any] | None = None, **_: Any) -> None:
        record = (context or {}).get("record")
        if record is not None:
            self.batch.append(vars(record))
            if len(self.batch) >= BATCH_RECORDS:
                self.ship()

    def ship(self) -> None:
        """What was answered since the last batch, and where this process's CPU stands."""
        batch, self.batch = self.batch, []
        self.runner.send_message("harness_records", {"records": batch,
                                                     "cpu": [time.monotonic(), scheduled_seconds()]})

    def _ship_forever(self) -> None:
        while True:
            gevent.sleep(SHIP_EVERY_S)
            self.ship()

    def _stopped(self, **_: Any) -> None:
        self.ship()
        self.runner.send_message("harness_done", {})

    def close(self) -> None:
        if self._ca is not None:
            self._ca.unlink(missing_ok=True)


def serve(host: str, port: int, name: str, idle_timeout_s: float, once: bool = False) -> int:
    """Serve masters until none has come for `idle_timeout_s` (or after one, with `once`);
    0 then, 2 if a master refused this worker. SIGTERM and Ctrl-C stop the users of a load
    in progress (they finish their request in flight) and end the worker."""
    # how long one connection attempt waits for a master: the idle timeout, in Locust's units
    locust.runners.CONNECT_RETRY_COUNT = max(1, int(idle_timeout_s / locust.runners.CONNECT_TIMEOUT))
    current: list[WorkerRunner] = []
    stopping = False

    def stop() -> None:
        nonlocal stopping
        stopping = True
        if not current:
            os._exit(0)  # waiting for a master: nothing runs, nothing to leave behind
        gevent.spawn(current[0].quit)

    for number in (signal.SIGTERM, signal.SIGINT):
        gevent.signal_handler(number, stop)
    print(f"harness worker {name} (harness {VERSION}): waiting for a master at {host}:{port}",
          file=sys.stderr, flush=True)
    while not stopping:
        env = Environment(user_classes=[], stop_timeout=STOP_TIMEOUT_S)
        try:
            runner = env.create_worker_runner(host, port)
        except ConnectionError:
            print(f"harness worker {name}: no master came to {host}:{port} for "
                  f"{idle_timeout_s:g} s; stopping", file=sys.stderr, flush=True)
            return 0
        worker = Worker(env, runner, name)
        current[:] = [runner]
        try:
            if not worker.planned.wait(timeout=PLAN_WAIT_S):
                runner.quit()  # joined a master on its way out: join the next one
                continue
            runner.greenlet.join()
        finally:
            current.clear()
            worker.close()
            runner.client.close()
        if worker.refused:
            print(f"harness worker {name}: refused: {worker.refused}", file=sys.stderr, flush=True)
            return 2
        if once or stopping:
            return 0
        print(f"harness worker {name}: load done; waiting for the next master", file=sys.stderr, flush=True)
        gevent.sleep(QUIT_GRACE_S)
    return 0


def default_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m harness.traffic.worker")
    parser.add_argument("--master", required=True)
    parser.add_argument("--name", default=None)
    parser.add_argument("--idle-timeout", type=float, default=600.0)
    parser.add_argument("--once", action="store_true")
    args = parser.parse_args(argv)
    try:
        master = Distributed.at(args.master, expect=0)
    except ValueError as e:
        print(f"harness worker: --master {e}", file=sys.stderr)
        return 2
    return serve(master.bind, master.port, args.name or default_name(), args.idle_timeout, args.once)


if __name__ == "__main__":
    sys.exit(main())
