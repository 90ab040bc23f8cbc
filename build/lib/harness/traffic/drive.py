"""Run Locust users headless for a scenario and write the request log: the load generator.

`python -m harness.traffic.drive PLAN.json` runs in its own process (Locust patches the
interpreter with gevent), stops by itself after `duration_s` or `max_requests`, whichever
comes first, and writes one JSON line per request to the plan's `log` (or, with
`rotate_bytes`, to rotated compressed segments of it: `harness.history.stream`). A stepped
plan (`steps`: a saturation search) adds each group's users again every step and writes a
record of each step, with this process's CPU demand over it, to `steps_log`. A plan
(`harness.traffic.plan`) has groups of users (HTTP through the entry, FTP to each node, ...),
all in this one process, or, with `workers`, in load workers on other machines: this process
is then their master (`harness.traffic.distributed`), writes their records on its own clock
and prints each worker's clock figures in its summary. The pytest side builds the plan and
reads the log through `harness.traffic.load`.
"""

from __future__ import annotations

from locust.env import Environment  # first: Locust must patch before other imports

import json
import signal
import sys
import time
from pathlib import Path
from typing import Any

import gevent

from harness.config import Topology
from harness.evidence import Call
from harness.history.steps import LoadStep
from harness.traffic.cpu import CpuDemand
from harness.traffic.plan import LoadPlan, UserGroup
from harness.traffic.users import (ClusterUser, FtpUploadUser, HttpServiceUser, SmtpSendUser,
                                   request_log)

STOP_TIMEOUT_S = 10  # users finish the request in flight instead of abandoning it
USERS = {"http": HttpServiceUser, "https": HttpServiceUser, "ftp": FtpUploadUser, "smtp": SmtpSendUser}


def user_class(group: UserGroup, topology: Topology, verify: str | bool, number: int,
               stepped: bool = False) -> type[ClusterUser]:
    """A Locust user class for `group`: exactly its users, or, in a stepped load, weighted by
    them (each step starts as many again, split as the groups are)."""
    base = USERS[group.protocol]
    count = {"weight": group.users, "fixed_count": 0} if stepped else {"fixed_count": group.users}
    extra: dict[str, Any] = {"topology": topology, "verify": verify, "rate": group.rate, **count}
    if base is HttpServiceUser:
        extra.update(protocol=group.protocol, service=group.service, endpoint=group.endpoint,
                     keyed=group.keyed, fresh_connections=group.fresh_connections,
                     evidence_request=Call.model_validate(group.call) if group.call else None)
    return base.configured(f"{base.__name__}{number}", **extra)


class LocalGenerator:
    """This process as the load's generator: its users fire the records, its CPU is the
    generator's."""

    def __init__(self, env: Environment, name: str) -> None:
        self.runner = env.create_local_runner()
        self.name = name
        self._cpu = CpuDemand()

    def mark(self) -> None:
        self._cpu.mark()

    def busiest(self) -> tuple[float | None, str]:
        return self._cpu.since_mark(), self.name

    def finish(self) -> None:
        self.runner.quit()

    def summary(self) -> dict[str, Any]:
        return {}


class Workers:
    """Load workers elsewhere as the generator, this process their master."""

    def __init__(self, env: Environment, plan: LoadPlan, sink: Any) -> None:
        from harness.traffic.distributed import Master

        assert plan.workers is not None
        self.runner = env.create_master_runner(plan.workers.bind, plan.workers.port)
        self.master = Master(env, self.runner, plan, sink)
        self.master.wait_for_workers()
        self.master.measure_clocks()
        self._since = time.monotonic()

    def mark(self) -> None:
        self._since = time.monotonic()

    def busiest(self) -> tuple[float | None, str]:
        return self.master.busiest_since(self._since)

    def finish(self) -> None:
        self.master.finish()
        self.runner.quit()

    def summary(self) -> dict[str, Any]:
        return {"clocks": self.master.summary()}


def step_through(generator: LocalGenerator | Workers, plan: LoadPlan, end: Any) -> None:
    """Start each step's users, hold the step, write its record; then end the load."""
    assert plan.steps is not None and plan.steps_log is not None
    per_step = sum(g.users for g in plan.groups)
    offered = sum(g.users * g.rate for g in plan.groups)
    with Path(plan.steps_log).open("a", buffering=1) as out:
        for number in range(1, plan.steps.count + 1):
            generator.runner.start(per_step * number, spawn_rate=min(per_step * 10, 100))
            start = time.monotonic()
            generator.mark()
            gevent.sleep(plan.steps.seconds)
            busy, who = generator.busiest()
            out.write(LoadStep(number, per_step * number, round(offered * number, 3), start,
                               time.monotonic(), None if busy is None else round(busy, 3),
                               who).to_json() + "\n")
    end()


def run(plan: LoadPlan) -> int:
    topology = Topology.model_validate(plan.topology)
    stepped = plan.steps is not None
    env = Environment(user_classes=[user_class(g, topology, plan.verify, i, stepped)
                                    for i, g in enumerate(plan.groups, 1)],
                      stop_timeout=STOP_TIMEOUT_S)
    writer = request_log(plan.log, plan.rotate_bytes)
    count = 0
    ending: Any = None

    def end() -> None:
        """End the load once, whatever asks first (the plan's length, its request limit,
        SIGTERM from a scenario that has seen enough)."""
        nonlocal ending
        if ending is None:
            ending = gevent.spawn(generator.finish)

    def sink(record: Any) -> None:
        nonlocal count
        writer(record)
        count += 1
        if count == plan.max_requests:
            end()

    if plan.workers is None:
        generator: LocalGenerator | Workers = LocalGenerator(env, plan.name)
        env.events.request.add_listener(lambda context=None, **_: sink(context["record"])
                                        if context and "record" in context else None)
    else:
        generator = Workers(env, plan, sink)
    runner = generator.runner
    users = sum(g.users for g in plan.groups)
    # SIGTERM ends the run early but as usual (users finish, the log is closed, the summary
    # printed): a scenario that has seen what it needs ends its load so
    gevent.signal_handler(signal.SIGTERM, end)
    if stepped:
        schedule = gevent.spawn(step_through, generator, plan, end)
    else:
        runner.start(users, spawn_rate=users * 10)
        schedule = gevent.spawn_later(plan.duration_s, end)
    runner.greenlet.join(timeout=plan.duration_s + 60)
    schedule.kill()
    if ending is not None:
        ending.join(timeout=60)
    writer.close()
    print(json.dumps({"requests": count,
                      "failures": env.stats.total.num_failures,
                      "locust_requests": env.stats.total.num_requests,
                      **generator.summary()}))
    return 0


def main(argv: list[str] | None = None) -> int:
    args = argv if argv is not None else sys.argv[1:]
    if len(args) != 1:
        print("usage: python -m harness.traffic.drive PLAN.json", file=sys.stderr)
        return 2
    return run(LoadPlan.model_validate_json(Path(args[0]).read_text()))


if __name__ == "__main__":
    sys.exit(main())
