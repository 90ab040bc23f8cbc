"""Processes the harness starts, labelled per run so that nothing outlives a run.

A run owns a slot: a directory under the state root holding a lock (held by the owner
process for the life of the run) and the pid list of every process it started. The slot
number is also the second octet of the run's loopback addresses (127.SLOT.x.y), so two runs
on one machine never share an address or a port. A slot whose lock is free but whose pid
list is not empty belongs to a run that died (SIGKILL of pytest): `sweep_stale` kills what
it left, after checking each pid still names the process it started (by its start time).
Every process also carries the run's label in its environment, for people looking at `ps e`.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import secrets
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from harness.errors import HarnessError
from harness.runstate import KEEP_VAR, LABEL_VAR, STATE_ROOT, start_time

SLOTS = range(20, 250)
CLAIMS = Path("/tmp/harness-slot-claims")
"""One lock per slot for the whole machine, whatever a run's state root: the slot's addresses
are the machine's, and two runs under different roots (a test's own HARNESS_STATE_DIR beside
a parallel worker's run) must not both take a slot neither has started listening on yet."""
# Where a run in a slot listens first: balancer, Toxiproxy and store on 127.SLOT.0.{1,2,3}.
PROBES = ((1, 8080), (2, 8474), (3, 6379))


def recorded_alive(pid_file: Path) -> list[int]:
    """The recorded processes that are still the same processes."""
    if not pid_file.exists():
        return []
    alive = []
    for line in pid_file.read_text().splitlines():
        pid_s, _label, started = line.split()[:3]
        if start_time(int(pid_s)) == started:
            alive.append(int(pid_s))
    return alive


def _kill_recorded(pid_file: Path) -> int:
    """Kill every recorded process (and its process group) still alive; returns how many."""
    killed = 0
    for pid in recorded_alive(pid_file):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)
            killed += 1
    pid_file.unlink(missing_ok=True)
    return killed


def try_lock(path: Path) -> IO[str] | None:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = path.open("a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        return None
    return handle


def clear(slot_dir: Path) -> None:
    """Remove a run's files (logs, settings, certificates), keeping only the slot's lock."""
    for path in slot_dir.iterdir():
        if path.name == "lock":
            continue
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)


def sweep_stale(root: Path = STATE_ROOT) -> int:
    """Kill the processes of runs that died without cleaning up, and remove the files of
    every run that is over (a crashed one's, one kept with --keep-run-dir, one from before
    runs removed their own); returns how many processes."""
    killed = 0
    for slot_dir in sorted(root.glob("slot-*")) if root.exists() else []:
        lock = try_lock(slot_dir / "lock")
        if lock is None:
            continue  # a live run holds it
        try:
            killed += _kill_recorded(slot_dir / "pids")
            clear(slot_dir)
        finally:
            lock.close()
    return killed


def _slot_in_use(slot: int) -> bool:
    """Does anything accept connections where a run in this slot would listen?"""
    for host, port in PROBES:
        with contextlib.suppress(OSError), \
                socket.create_connection((f"127.{slot}.0.{host}", port), timeout=0.1):
            return True
    return False


@dataclass
class Proc:
    name: str
    argv: list[str]
    popen: subprocess.Popen[bytes]
    log: Path

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def died(self) -> str | None:
        """None while it runs; once it exited, the last lines of its log."""
        if self.alive():
            return None
        return " | ".join(self.log.read_text(errors="replace").strip().splitlines()[-3:])

    def signal(self, sig: signal.Signals) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, sig)


@dataclass
class Run:
    """One run's slot, label, working directory and processes."""

    slot: int
    directory: Path
    label: str
    _lock: IO[str]
    _claim: IO[str]
    procs: dict[str, Proc] = field(default_factory=dict)

    @classmethod
    def acquire(cls, root: Path = STATE_ROOT, busy: Callable[[int], bool] | None = None) -> "Run":
        """The first free slot; `busy` lets a backend skip slots it sees taken elsewhere."""
        sweep_stale(root)
        for slot in SLOTS:
            directory = root / f"slot-{slot}"
            lock = try_lock(directory / "lock")
            if lock is None:
                continue
            _kill_recorded(directory / "pids")
            claim = try_lock(CLAIMS / f"{slot}.lock")
            if claim is None or _slot_in_use(slot) or (busy and busy(slot)):  # taken outside this root
                lock.close()
                if claim is not None:
                    claim.close()
                continue
            (directory / "owner").write_text(str(os.getpid()))
            return cls(slot, directory, f"harness-{slot}-{secrets.token_hex(4)}", lock, claim)
        raise HarnessError(f"every run slot under {root} is taken; stop other harness runs")

    def address(self, group: int, index: int) -> str:
        """The loopback address of one component: 127.<slot>.<group>.<index>."""
        return f"127.{self.slot}.{group}.{index}"

    def spawn(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> Proc:
        if name in self.procs and self.procs[name].alive():
            raise HarnessError(f"process {name!r} is already running")
        log = self.directory / f"{name}.log"
        with log.open("ab") as out:
            popen = subprocess.Popen(
                argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                env={**os.environ, **(env or {}), LABEL_VAR: self.label},
                start_new_session=True, cwd=self.directory)
        with (self.directory / "pids").open("a") as f:
            f.write(f"{popen.pid} {self.label} {start_time(popen.pid)} {name}\n")
        proc = Proc(name, argv, popen, log)
        self.procs[name] = proc
        return proc

    def stop(self, name: str, grace_s: float = 3.0) -> None:
        proc = self.procs.get(name)
        if proc is None or not proc.alive():
            return
        proc.signal(signal.SIGCONT)  # a paused process cannot handle SIGTERM
        proc.signal(signal.SIGTERM)
        try:
            proc.popen.wait(grace_s)
        except subprocess.TimeoutExpired:
            proc.signal(signal.SIGKILL)
            proc.popen.wait()

    def release(self) -> None:
        """Stop every process, then remove the run's files unless asked to keep them (the
        report has what it needs by now: logs are attached per scenario)."""
        for name in list(self.procs):
            self.stop(name, grace_s=1.0)
        with contextlib.suppress(FileNotFoundError):
            (self.directory / "pids").unlink()
        if not os.environ.get(KEEP_VAR):
            clear(self.directory)
        self._lock.close()
        self._claim.close()


def wait_for_port(host: str, port: int, timeout_s: float, name: str = "",
                  died: Callable[[], str | None] | None = None) -> None:
    """Poll until something accepts on (host, port); fail fast once `died()` says why the
    process meant to listen there stopped (any backend: a process, a container)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if died is not None and (why := died()) is not None:
            raise HarnessError(f"{name} exited during start-up: {why}")
        with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.2):
            return
        time.sleep(0.02)
    raise HarnessError(f"nothing accepted connections on {host}:{port} within {timeout_s:.0f} s")
