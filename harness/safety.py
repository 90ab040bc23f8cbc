"""Safe to point at a cluster people depend on: a kill switch, a steady state before each fault.

**The kill switch.** Every run that may fault a cluster (a pytest session, a soak, a capacity
run) registers itself under the state root while it runs. `harness abort`, from any terminal
on the machine, sends each of them SIGTERM; so does a CI runner's timeout; so does this
process itself when the file named by `--abort-file` appears. SIGTERM raises `Aborted` in the
run's main thread, which unwinds through every fault's `finally` (each fault is healed: a
kernel rule deleted, a Toxiproxy toxic removed, a paused node resumed, a killed one
restarted) and every load's `__exit__` (the load generators stopped): the run ends "aborted",
its own outcome and exit code, saying who aborted it and what was in force.

**The steady state.** Before a fault is injected, the cluster is checked healthy (every node
answering on its own endpoint, the user's own health check if the topology names one:
`safety.health`); a cluster that is not is never faulted further (`NotHealthy`). How the
entry spreads its load is C1's business, not health: a skewed balancer is still faulted.

**The stop conditions** (`StopConditions`), watched while a load runs (`harness.world.health`):
too few nodes answering, the entry failing outside the run's own faults (or past a hard limit
inside them), the user's health check failing for long; one firing aborts the whole run as
the kill switch does, saying which and what it saw. The options of the same name give them,
else the topology's `safety` section (a team's defaults), else the defaults here.
"""

from __future__ import annotations

import atexit
import json
import os
import signal
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.errors import HarnessError
from harness.runstate import STATE_ROOT, owner_alive, owner_tag

if TYPE_CHECKING:  # the kill switch's own command imports no topology model: it stays fast
    from harness.config import Safety

REMOTE_TARGETS_HELP = ("allow the topology to name addresses outside loopback (other hosts: "
                       "yours, to put under test)")
"""One help text for --allow-remote-targets, wherever a command takes a topology: the network
rule (`harness.config.check_targets`) holds unless the user opts in."""

RUNS = STATE_ROOT / "runs"
WATCH_S = 0.2  # how often an abort file is looked for


class Aborted(KeyboardInterrupt):
    """The run was stopped from outside (`harness abort`, SIGTERM, the abort file) or by a
    stop condition: everything in force is healed on the way out. A KeyboardInterrupt, so
    that pytest, like Ctrl-C, tears the session down (clusters closed, faults healed)."""

    def __init__(self, why: str) -> None:
        super().__init__(why)
        self.why = why


class NotHealthy(HarnessError):
    """The cluster was not healthy before a fault: the fault is not injected."""


_reason: list[str] = []  # why this process was aborted, once it was


def abort_reason() -> str | None:
    """Why this run was aborted, if it was (its entry points pick their exit code by it)."""
    return _reason[0] if _reason else None


def _on_term(signum: int, _frame: object) -> None:
    why = _pending.pop(0) if _pending else "aborted by the operator (SIGTERM: `harness abort`, or a CI timeout)"
    if not _reason:
        _reason.append(why)
    raise Aborted(why)


_pending: list[str] = []  # a reason set just before this process signals itself


def abort_self(why: str) -> None:
    """Abort this run from any thread: the main thread unwinds as on SIGTERM, with `why`."""
    _pending.append(why)
    os.kill(os.getpid(), signal.SIGTERM)


def stopped(why: str) -> str:
    """Record that a stop condition ends this run (`why` says which and what it saw); the
    reason, as the run reports it."""
    if not _reason:
        _reason.append(f"stopped: {why}")
    return _reason[0]


def stop_run(why: str) -> None:
    """End the whole run as aborted by a stop condition: raised in the main thread, so every
    fault in force is healed on the way out."""
    raise Aborted(stopped(why))


def install(what: str, abort_file: Path | None = None) -> None:
    """Make this process a run `harness abort` can stop: SIGTERM aborts it, it is registered
    under the state root while it lives, and `abort_file` appearing aborts it too."""
    signal.signal(signal.SIGTERM, _on_term)
    RUNS.mkdir(parents=True, exist_ok=True)
    me = RUNS / f"{owner_tag()}.json"
    me.write_text(json.dumps({"pid": os.getpid(), "what": what, "since": time.time()}))
    atexit.register(me.unlink, missing_ok=True)
    if abort_file is not None:
        def watch() -> None:
            while not abort_file.exists():
                time.sleep(WATCH_S)
            abort_self(f"aborted by the operator ({abort_file} appeared)")
        threading.Thread(target=watch, name="abort-file", daemon=True).start()


@dataclass(frozen=True)
class StopConditions:
    """When a run stops as a whole, every fault healed and its load stopped."""

    min_healthy_nodes: int = 1
    """fewer nodes than this answering on their own endpoints, those under the run's own
    faults (or recovering from one) aside"""
    stop_error_rate: float = 0.5
    """the entry failing more than this share of its answers over the last seconds, with
    none of the run's faults in force or recovering (inside them: `HARD_ERROR_RATE`)"""
    stop_health_seconds: float = 10.0
    """the topology's health check (`safety.health`) failing this long"""


HARD_ERROR_RATE = 0.95
"""the entry's failing share that stops a run even while its own faults are in force"""

STOP_HELP = {
    "min_healthy_nodes": ("N", "stop the run (every fault healed) when fewer nodes than this "
                               "answer, those under its own faults aside"),
    "stop_error_rate": ("X", "stop the run (every fault healed) when the entry fails more than "
                             "this share of its answers over 5 s outside its own faults (inside "
                             f"them, past {HARD_ERROR_RATE:g})"),
    "stop_health_seconds": ("S", "stop the run (every fault healed) when the topology's health "
                                 "check (safety.health) fails this long"),
}


def add_stop_options(add: Callable[..., Any]) -> None:
    """Declare the stop conditions' options with `add` (argparse's `add_argument`, pytest's
    `addoption`): the same names for pytest, `harness soak` and `clusterproof run`."""
    for f in fields(StopConditions):
        metavar, text = STOP_HELP[f.name]
        add("--" + f.name.replace("_", "-"), dest=f.name, type=type(f.default), default=None,
            metavar=metavar, help=f"{text} (default: the topology's safety.{f.name}, else {f.default:g})")


def stop_conditions(given: Mapping[str, Any], safety: Safety) -> StopConditions:
    """The stop conditions of a run: each option given, else the topology's `safety` field
    of the same name, else the default; a value out of range is one sentence."""
    values = {f.name: v for f in fields(StopConditions)
              if (v := given.get(f.name) if given.get(f.name) is not None else getattr(safety, f.name))
              is not None}
    stops = StopConditions(**values)
    if stops.min_healthy_nodes < 0:
        raise HarnessError(f"--min-healthy-nodes must not be negative, not {stops.min_healthy_nodes}")
    if not 0 < stops.stop_error_rate <= 1:
        raise HarnessError(f"--stop-error-rate must be more than 0 and at most 1, not {stops.stop_error_rate:g}")
    if stops.stop_health_seconds <= 0:
        raise HarnessError(f"--stop-health-seconds must be more than 0, not {stops.stop_health_seconds:g}")
    return stops


@dataclass(frozen=True)
class Run:
    pid: int
    what: str
    tag: str


def running() -> list[Run]:
    """The runs registered and alive (a dead one's entry is removed)."""
    found = []
    for entry in sorted(RUNS.glob("*.json")) if RUNS.exists() else []:
        tag = entry.stem
        if tag == owner_tag():
            continue
        if not owner_alive(tag):
            entry.unlink(missing_ok=True)
            continue
        data = json.loads(entry.read_text())
        found.append(Run(int(data["pid"]), str(data["what"]), tag))
    return found


def abort_all(wait_s: float = 60.0, say: Callable[[str], None] = print) -> int:
    """Send every running run SIGTERM and wait (at most `wait_s`) for each to heal and end;
    then replay the journals of any that died without healing. How many were aborted."""
    runs = running()
    for run in runs:
        say(f"aborting {run.what} (pid {run.pid})")
        try:
            os.kill(run.pid, signal.SIGTERM)
        except ProcessLookupError:
            continue
    deadline = time.monotonic() + wait_s
    for run in runs:
        while owner_alive(run.tag) and time.monotonic() < deadline:
            time.sleep(0.05)
        say(f"{run.what} (pid {run.pid}) " + ("ended" if not owner_alive(run.tag) else
                                              f"still running after {wait_s:g} s"))
    from harness.kernel import sweep  # after the signals: the kill switch does not wait for imports

    healed = sweep()
    if healed:
        say(f"healed {healed} fault(s) a dead run had left")
    return len(runs)
