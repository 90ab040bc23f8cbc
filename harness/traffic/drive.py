"""Run Locust users headless for a scenario and write the request log: the load generator.

`python -m harness.traffic.drive PLAN.json` runs in its own process (Locust patches the
interpreter with gevent), stops by itself after `duration_s` or `max_requests`, whichever
comes first, and writes one JSON line per request to the plan's `log`. The pytest side builds
the plan and reads the log through `harness.traffic.load`.
"""

from __future__ import annotations

from locust.env import Environment  # first: Locust must patch before other imports

import json
import sys
from pathlib import Path
from typing import Any

import gevent
from pydantic import BaseModel

from harness.config import Topology
from harness.evidence import Call
from harness.traffic.users import FtpUploadUser, HttpServiceUser, SmtpSendUser, attach_request_log

STOP_TIMEOUT_S = 10  # users finish the request in flight instead of abandoning it
USERS = {"http": HttpServiceUser, "https": HttpServiceUser, "ftp": FtpUploadUser, "smtp": SmtpSendUser}


class LoadPlan(BaseModel):
    topology: dict[str, Any]
    protocol: str = "http"
    service: str | None = None  # an /invoke/ service; None: `call`, else the topology's request
    call: dict[str, Any] | None = None  # an evidence request (harness.evidence.Call)
    endpoint: str = "entry"
    keyed: bool = False
    fresh_connections: bool = False
    users: int = 4
    rate: float = 10.0
    duration_s: float = 5.0
    max_requests: int = 10_000
    verify: str | bool = True
    log: str


def run(plan: LoadPlan) -> int:
    topology = Topology.model_validate(plan.topology)
    base = USERS[plan.protocol]
    extra: dict[str, Any] = {"topology": topology, "verify": plan.verify, "rate": plan.rate}
    if base is HttpServiceUser:
        extra.update(protocol=plan.protocol, service=plan.service, endpoint=plan.endpoint,
                     keyed=plan.keyed, fresh_connections=plan.fresh_connections,
                     evidence_request=Call.model_validate(plan.call) if plan.call else None)
    user_class = base.configured(**extra)
    env = Environment(user_classes=[user_class], stop_timeout=STOP_TIMEOUT_S)
    writer = attach_request_log(env, plan.log)
    runner = env.create_local_runner()
    count = 0

    def on_request(**_: Any) -> None:
        nonlocal count
        count += 1
        if count == plan.max_requests:
            gevent.spawn(runner.quit)

    env.events.request.add_listener(on_request)
    runner.start(plan.users, spawn_rate=plan.users * 10)
    stopper = gevent.spawn_later(plan.duration_s, runner.quit)
    runner.greenlet.join(timeout=plan.duration_s + 30)
    stopper.kill()
    writer.close()
    print(json.dumps({"requests": count,
                      "failures": env.stats.total.num_failures,
                      "locust_requests": env.stats.total.num_requests}))
    return 0


def main(argv: list[str] | None = None) -> int:
    args = argv if argv is not None else sys.argv[1:]
    if len(args) != 1:
        print("usage: python -m harness.traffic.drive PLAN.json", file=sys.stderr)
        return 2
    return run(LoadPlan.model_validate_json(Path(args[0]).read_text()))


if __name__ == "__main__":
    sys.exit(main())
