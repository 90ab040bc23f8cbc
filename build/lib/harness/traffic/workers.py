"""Load workers the harness starts itself, over SSH, for the length of one run.

The topology's `load.workers` names the team's load machines and the login on each (the same
settings as `control.ssh`: user, key file or agent, known hosts checked strictly, a bastion).
For a run that asks for workers (`--load-workers`), each gets one `ssh` that starts
`harness worker --master HOST:PORT` there in the background (its pid in a file there) and
returns; what stops it again is written to a journal under the state root first. The workers
are stopped at the run's end and on Ctrl-C; if the run was killed, the next run (or `harness
down`) replays its journal; and a worker no master has come to for its idle timeout ends by
itself. No Locust here: this runs in the controller's process.
"""

from __future__ import annotations

import shlex
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager, suppress

from harness.config import LoadWorker, Topology
from harness.errors import HarnessError
from harness.kernel import Journal, Place, replay_dead
from harness.runstate import STATE_ROOT, owner_tag
from harness.ssh import explain
from harness.traffic.plan import DEFAULT_MASTER, Distributed

JOURNALS = STATE_ROOT / "load-workers"
IDLE_TIMEOUT_S = 600.0  # a worker left behind ends by itself after this long without a master
SSH_TIMEOUT_S = 30.0


def distributed(expect: int, master: str | None, topology: Topology | None) -> Distributed | None:
    """The master a run's loads need: None without workers; the address from `master`
    (--load-master), else the topology's `load.master`, else Locust's default on loopback.
    One sentence (HarnessError) for an address that is not HOST[:PORT]."""
    if expect < 0:
        raise HarnessError(f"--load-workers must be 0 or more, not {expect}")
    if expect == 0:
        return None
    address = master or (topology.load.master if topology else None) or DEFAULT_MASTER
    try:
        return Distributed.at(address, expect)
    except ValueError as e:
        raise HarnessError(f"--load-master {e}") from None


def _files(worker: LoadWorker, index: int) -> tuple[str, str]:
    stem = f"/tmp/harness-worker-{owner_tag()}-{index}"
    return f"{stem}.pid", f"{stem}.log"


def _start_line(worker: LoadWorker, master: Distributed, index: int) -> str:
    pidfile, log = _files(worker, index)
    command = (f"{worker.command} --master {shlex.quote(master.address)} --name "
               f"{shlex.quote(worker.host)} --idle-timeout {IDLE_TIMEOUT_S:g}")
    return (f"setsid {command} </dev/null >{log} 2>&1 & echo $! >{pidfile}")


def _stop_line(worker: LoadWorker, index: int) -> list[str]:
    pidfile, log = _files(worker, index)
    return ["sh", "-c", f"kill -TERM \"$(cat {pidfile})\" 2>/dev/null; rm -f {pidfile} {log}"]


@contextmanager
def started_over_ssh(workers: list[LoadWorker], master: Distributed) -> Iterator[list[str]]:
    """A worker on each machine for the body, stopped after, whatever happens; yields their
    names. A machine that cannot be reached (login refused, host key unknown or changed) is
    one sentence, and the workers already started are stopped."""
    replay_dead(JOURNALS)
    journal = Journal(JOURNALS / f"{owner_tag()}.jsonl")
    started: list[tuple[int, Place, list[str]]] = []
    try:
        for index, worker in enumerate(workers):
            place = Place(f"load machine {worker.host} (load.workers)", ssh=worker.ssh, host=worker.host)
            stop = _stop_line(worker, index)
            entry = journal.add(place, [stop])
            started.append((entry, place, stop))
            argv = worker.ssh.argv(worker.host, _start_line(worker, master, index))
            done = subprocess.run(argv, capture_output=True, text=True, timeout=SSH_TIMEOUT_S,
                                  stdin=subprocess.DEVNULL)
            if done.returncode != 0:
                said = explain(done.stderr, worker.ssh.destination(worker.host), worker.ssh.known_hosts)
                raise HarnessError(said or f"starting a load worker on {worker.host} failed "
                                           f"(exit {done.returncode}): {done.stderr.strip()[-200:]}")
        yield [w.host for w in workers]
    finally:
        for entry, place, stop in reversed(started):
            with suppress(OSError, subprocess.SubprocessError):  # the journal keeps it if this fails
                subprocess.run(place.argv(stop), capture_output=True, timeout=SSH_TIMEOUT_S,
                               stdin=subprocess.DEVNULL)
                journal.done(entry)
        if not journal.pending:
            journal.path.unlink(missing_ok=True)


@contextmanager
def for_run(expect: int, master: str | None, topology: Topology | None) -> Iterator[Distributed | None]:
    """What a run's loads are made by: None (local processes) without `expect` workers; else
    the master they come to, the topology's load machines started over SSH for the run."""
    spec = distributed(expect, master, topology)
    if spec is None or topology is None or not topology.load.workers:
        yield spec
        return
    with started_over_ssh(topology.load.workers, spec):
        yield spec


def sweep() -> int:
    """Stop the workers a killed run left on its load machines (its journal replayed)."""
    return replay_dead(JOURNALS)
