"""Network faults as kernel rules, for clusters that cannot be rewired through Toxiproxy.

Jepsen's partition nemesis and Pumba's way: iptables rules that drop packets (a black hole:
the peer times out) or reject them with a TCP reset (the peer sees a reset), and a `tbf`
qdisc that limits bandwidth, each scoped to one node's address and port: never a chain's
policy, never a whole device. Every rule carries a comment naming the process that made it
(`harness-fault:<pid>.<start time>`), and what undoes each fault is written to a journal
under the state root before the fault is applied. A fault is healed at its end, at exit
(atexit), and, if the run was killed, by the next run's `sweep`: journals of dead processes
are replayed, and host rules whose tag names a dead process are deleted.

Where the commands run (`Place`): here, for a process on a loopback address; inside a
container's network namespace (`nsenter -t PID -n` with the host's binaries, as Pumba's
helper container shares the namespace); on a node's host over SSH (`control.ssh`, each
command one quoted line); or through the operator's template around `{command}`.

Which faults a kernel offers is found by trying them in a throwaway network namespace: on
some kernels `netem` (latency) is missing, and the scenarios that need it are skipped.
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import json
import os
import re
import shlex
import shutil
import subprocess
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Literal

from harness.commands import render
from harness.errors import HarnessError
from harness.fault_kinds import KINDS
from harness.history.timeline import FaultKind
from harness.runstate import STATE_ROOT, owner_alive, owner_tag
from harness.ssh import SshControl

TAG_PREFIX = "harness-fault:"
JOURNALS = STATE_ROOT / "kernel-faults"
COMMAND_TIMEOUT_S = 10.0
# The root qdisc the bandwidth fault adds: an htb whose default class is unlimited, so only
# the packets the filter picks go through the tbf below class 2.
QDISC_HANDLE, TBF_HANDLE = "4a53:", "4a54:"
UNLIMITED = "100gbit"

Mode = Literal["drop", "reject"]
Direction = Literal["both", "in", "out"]
Role = Literal["listener", "client", "peer"]
Command = list[str]


@dataclass(frozen=True)
class Place:
    """Where a fault command runs: here, behind a prefix (nsenter), in a template, or on a
    node's host over SSH (`ssh` and the host it defaults to)."""

    name: str
    prefix: tuple[str, ...] = ()
    template: str | None = None
    values: tuple[tuple[str, str], ...] = ()
    ssh: SshControl | None = None
    host: str = ""

    def argv(self, command: Command) -> Command:
        if self.ssh is not None:
            return self.ssh.argv(self.host, shlex.join(command))
        if self.template is None:
            return [*self.prefix, *command]
        line = render(self.template, dict(self.values)).replace("{command}", shlex.join(command))
        return ["sh", "-c", line]

    @property
    def local(self) -> bool:
        """Commands run by this machine's kernel (here or in one of its namespaces)."""
        return self.template is None and self.ssh is None


def over_ssh(ssh: SshControl, host: str, node: str) -> Place:
    return Place(f"{node}'s host {ssh.destination(host)} (nodes[{node}].control.ssh)", ssh=ssh, host=host)


HERE = Place("this host")


def in_namespace_of(pid: int, name: str) -> Place:
    return Place(name, prefix=("nsenter", "-t", str(pid), "-n"))


@dataclass(frozen=True)
class Scope:
    """One link of one node as the kernel sees it: the node listens on (`listener`) or
    connects to (`client`) `address:port`, or, for a partition, exchanges anything with the
    `peer` at `address` (the port unused: the node's namespace is its own); `address` None
    means the whole namespace is the node's, so the port alone scopes the rule. `device` is where its outgoing packets leave,
    for bandwidth limits (None: not known, so not offered)."""

    place: Place
    port: int
    address: str | None = None
    role: Role = "listener"
    device: str | None = None
    device_field: str = "control.network_device"


class NoScope(HarnessError):
    """The cluster cannot say where a kernel fault would go; any of `fields` would tell it
    (`needs` names them), or, where no field can, `reason` says why."""

    def __init__(self, *fields: str, reason: str | None = None) -> None:
        self.needs = " or ".join(f"`{f}`" for f in fields)
        self.reason = reason or f"needs {self.needs} in the topology for kernel faults"
        super().__init__(reason or f"kernel network faults need {self.needs} in the topology")


# -- the commands, as pure functions of the scope ------------------------------------------

def partition_rules(scope: Scope, mode: Mode, direction: Direction, tag: str,
                    probability: float = 1.0) -> list[Command]:
    """iptables rule specs (chain first) that cut `scope` in `direction`: "in" is packets
    towards the node, "out" packets from it; with `probability` below 1, only that share of
    them, drawn at random per packet (packet loss, where netem is missing)."""
    port = str(scope.port)
    mine = ["-d", scope.address] if scope.address else []
    theirs = ["-s", scope.address] if scope.address else []
    if scope.role == "peer":  # every packet between the node's namespace and the peer
        assert scope.address, "a partition needs the peer's address"
        toward, away = ["INPUT", "-s", scope.address], ["OUTPUT", "-d", scope.address]
    elif scope.role == "listener":  # the node's own address and port
        toward = ["INPUT", *mine, "-p", "tcp", "--dport", port]
        away = ["OUTPUT", *theirs, "-p", "tcp", "--sport", port]
    else:  # the peer the node connects to
        toward = ["INPUT", *theirs, "-p", "tcp", "--sport", port]
        away = ["OUTPUT", *mine, "-p", "tcp", "--dport", port]
    chosen = {"both": [toward, away], "in": [toward], "out": [away]}[direction]
    if probability < 1:
        chosen = [[*spec, "-m", "statistic", "--mode", "random", "--probability", f"{probability:g}"]
                  for spec in chosen]
    if mode == "drop":
        return [[*spec, "-m", "comment", "--comment", tag, "-j", "DROP"] for spec in chosen]
    # The reset a REJECT sends back leaves by the other direction's chain: caught there, it
    # would turn the refusal into a black hole (the client times out instead of being
    # refused). Resets therefore pass both rules; everything else of the link is refused.
    return [[*spec, "!", "--tcp-flags", "RST", "RST", "-m", "comment", "--comment", tag,
             "-j", "REJECT", "--reject-with", "tcp-reset"] for spec in chosen]


def rule_commands(rules: list[Command]) -> tuple[list[Command], list[Command]]:
    """(apply, heal): each rule inserted first in its chain, and deleted by the same spec."""
    iptables = ["iptables", "-w", "5"]
    return ([[*iptables, "-I", r[0], "1", *r[1:]] for r in rules],
            [[*iptables, "-D", r[0], *r[1:]] for r in rules])


def shaping_commands(scope: Scope, leaf: list[str]) -> tuple[list[Command], list[Command]]:
    """(apply, heal) for a qdisc `leaf` (tbf, netem) on the packets the node sends on
    `scope`: an htb root with an unlimited default class, the leaf under class 2, and a u32
    filter that picks the scope's packets. Healing deletes the root, and all with it."""
    assert scope.device is not None
    dev = ["dev", scope.device]
    ends = ("src", "sport") if scope.role == "listener" else ("dst", "dport")
    match = (["match", "ip", ends[0], f"{scope.address}/32"] if scope.address else []) + \
        ["match", "ip", ends[1], str(scope.port), "0xffff"]
    apply = [
        ["tc", "qdisc", "add", *dev, "root", "handle", QDISC_HANDLE, "htb", "default", "1"],
        ["tc", "class", "add", *dev, "parent", QDISC_HANDLE, "classid", f"{QDISC_HANDLE}1",
         "htb", "rate", UNLIMITED],
        ["tc", "class", "add", *dev, "parent", QDISC_HANDLE, "classid", f"{QDISC_HANDLE}2",
         "htb", "rate", UNLIMITED],
        ["tc", "qdisc", "add", *dev, "parent", f"{QDISC_HANDLE}2", "handle", TBF_HANDLE, *leaf],
        ["tc", "filter", "add", *dev, "parent", QDISC_HANDLE, "protocol", "ip", "prio", "1",
         "u32", *match, "flowid", f"{QDISC_HANDLE}2"],
    ]
    return apply, [["tc", "qdisc", "del", *dev, "root", "handle", QDISC_HANDLE]]


def tbf(rate_kb_s: float) -> list[str]:
    """Toxiproxy's `bandwidth` rate (KB/s) as a tbf leaf. The burst is one Ethernet frame:
    on a loopback device (MTU 64 KiB) larger packets than that are dropped, which a limit
    this low would stall anyway."""
    return ["tbf", "rate", f"{max(1, round(rate_kb_s * 8))}kbit", "burst", "1600", "latency", "400ms"]


def netem(latency_ms: float, jitter_ms: float = 0) -> list[str]:
    return ["netem", "delay", f"{latency_ms:g}ms", *([f"{jitter_ms:g}ms"] if jitter_ms else [])]


Builder = Callable[[Scope, str, dict[str, float]], tuple[list[Command], list[Command]]]


def _partition(mode: Mode) -> Builder:
    return lambda scope, tag, a: rule_commands(
        partition_rules(scope, mode, str(a.get("direction", "both")), tag))  # type: ignore[arg-type]


# The fault kinds in kernel terms (what each needs of the kernel: `harness.fault_kinds.KINDS`): a
# cut link refuses (as a disabled proxy does), a timeout is a black hole, a reset peer a reset.
BUILDERS: dict[FaultKind, Builder] = {
    FaultKind.CUT: _partition("reject"),
    FaultKind.RESET_PEER: _partition("reject"),
    FaultKind.TIMEOUT: _partition("drop"),
    FaultKind.PARTITION: _partition("drop"),
    FaultKind.LOSS: lambda scope, tag, a: rule_commands(
        partition_rules(scope, "drop", "both", tag, float(a.get("probability", 0.8)))),
    FaultKind.BANDWIDTH: lambda s, tag, a: shaping_commands(s, tbf(a.get("rate", 1))),
    FaultKind.LATENCY: lambda s, tag, a: shaping_commands(s, netem(a.get("latency", 1000),
                                                                   a.get("jitter", 0))),
}
assert set(BUILDERS) == {k for k, spec in KINDS.items() if spec.kernel}, "the vocabulary and the builders agree"


def build(kind: FaultKind, scope: Scope, tag: str, attributes: dict[str, float]
          ) -> tuple[list[Command], list[Command]]:
    """(apply, heal) for `kind` at `scope`, the rules tagged with `tag`."""
    if KINDS[kind].kernel != "iptables" and scope.device is None:
        raise HarnessError(f"no network device is known for {scope.place.name}, so a "
                           f"{kind} fault cannot be shaped there")
    return BUILDERS[kind](scope, tag, attributes)


def shell_line(place: Place, command: Command) -> str:
    """A command as it runs at `place`, for people to read (and paste)."""
    return shlex.join(place.argv(command))


def planned(kind: FaultKind, scope: Scope, tag: str = TAG_PREFIX + "<pid>.<start time>",
            **attributes: float) -> tuple[list[str], list[str]]:
    """The shell lines that would apply and heal `kind` at `scope` (nothing runs)."""
    apply, heal = build(kind, scope, tag, attributes)
    return [shell_line(scope.place, c) for c in apply], [shell_line(scope.place, c) for c in heal]


# -- running them ---------------------------------------------------------------------------

def run(place: Place, command: Command, check: bool = True) -> subprocess.CompletedProcess[str]:
    argv = place.argv(command)
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=COMMAND_TIMEOUT_S,
                              stdin=subprocess.DEVNULL)
    except FileNotFoundError:
        raise HarnessError(f"{argv[0]} is not installed, so kernel network faults cannot be "
                           "injected (run scripts/setup.sh)") from None
    except subprocess.TimeoutExpired:
        raise HarnessError(f"`{shlex.join(command)}` on {place.name} did not finish within "
                           f"{COMMAND_TIMEOUT_S:.0f} s") from None
    if check and done.returncode != 0:
        why = " | ".join((done.stderr or done.stdout).strip().splitlines()[-2:]) or f"exit {done.returncode}"
        raise HarnessError(f"`{shlex.join(command)}` failed on {place.name}: {why}")
    return done


def heal_at(place: Place, commands: list[Command]) -> None:
    """Run a fault's heal commands, none of them checked (a rule already gone is healed): on a
    host over SSH all in one `ssh`, one after another there, so that healing takes one round
    trip, not one per rule (the kill switch heals within a second)."""
    if place.ssh is not None and len(commands) > 1:
        line = "; ".join(shlex.join(c) for c in commands)
        argv = place.ssh.argv(place.host, line)
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            subprocess.run(argv, capture_output=True, timeout=COMMAND_TIMEOUT_S, stdin=subprocess.DEVNULL)
        return
    for command in commands:
        with contextlib.suppress(HarnessError):
            run(place, command, check=False)


def privileged() -> bool:
    """Root, or at least CAP_NET_ADMIN (bit 12 of the effective set)."""
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("CapEff:"):
                return bool(int(line.split()[1], 16) >> 12 & 1)
    return os.geteuid() == 0


SUPPORTED = "harness-kernel-can"
"""what a kernel-support trial prints once it has seen its rule or qdisc in place"""


@cache
def kernel_supports(kind: str, place: Place = HERE) -> bool:
    """Can this kernel (or the one behind `place`) do `kind` ("iptables", "tbf", "netem")?
    Tried in a throwaway network namespace, so nothing of ours is touched. The answer is the
    trial's own evidence (the rule or qdisc listed back, then a marker printed), never an
    exit code: a template that re-splits the words (`ssh HOST {command}` joins them, and the
    far shell splits them again) runs `sh -c tc`, and `tc` alone exits 0."""
    trial = {
        "iptables": "iptables -w 5 -A INPUT -p tcp --dport 9 -m comment --comment probe -j DROP"
                    " && iptables -w 5 -S INPUT | grep -q -- '--comment probe'",
        "tbf": "tc qdisc add dev lo root tbf rate 8kbit burst 1600 latency 50ms"
               " && tc qdisc show dev lo | grep -q tbf",
        "netem": "tc qdisc add dev lo root netem delay 1ms && tc qdisc show dev lo | grep -q netem",
    }[kind]
    with contextlib.suppress(HarnessError):
        done = run(place, ["unshare", "--net", "sh", "-c", f"{trial} && echo {SUPPORTED}"], check=False)
        return SUPPORTED in done.stdout.split()
    return False


@dataclass
class Journal:
    """What undoes this process's faults, on disk before each fault is applied."""

    path: Path
    pending: dict[int, tuple[Place, list[Command]]] = field(default_factory=dict)
    _next: int = 0

    def add(self, place: Place, heal: list[Command]) -> int:
        self._next += 1
        self.pending[self._next] = (place, heal)
        self._write({"id": self._next, "argv": [place.argv(c) for c in heal]})
        return self._next

    def done(self, entry: int) -> None:
        self.pending.pop(entry, None)
        self._write({"healed": entry})

    def _write(self, line: dict[str, object]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a") as out:
            out.write(json.dumps(line) + "\n")


def _replay(journal: Path) -> int:
    """Run the heal commands a dead process's journal left pending; how many faults.
    Runs starting together (pytest-xdist's workers, parallel jobs) all find the same dead
    journal: the first to lock it replays and removes it, the others pass it by (a file
    already gone, locked, or unlinked by the time the lock came)."""
    try:
        opened = journal.open()
    except FileNotFoundError:
        return 0
    with opened:
        try:
            fcntl.flock(opened, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return 0
        if os.fstat(opened.fileno()).st_nlink == 0:
            return 0
        entries: dict[int, list[Command]] = {}
        for line in opened.read().splitlines():
            with contextlib.suppress(ValueError):
                record = json.loads(line)
                if "healed" in record:
                    entries.pop(record["healed"], None)
                else:
                    entries[record["id"]] = record["argv"]
        for argv_list in reversed(list(entries.values())):
            for argv in argv_list:
                with contextlib.suppress(OSError, subprocess.SubprocessError):
                    subprocess.run(argv, capture_output=True, timeout=COMMAND_TIMEOUT_S,
                                   stdin=subprocess.DEVNULL)
        journal.unlink(missing_ok=True)
    return len(entries)


def stale_host_rules(listing: str) -> list[Command]:
    """The delete commands for rules in `iptables -S` output tagged by dead processes."""
    deletes = []
    for line in listing.splitlines():
        found = re.search(rf'--comment "?{re.escape(TAG_PREFIX)}([0-9.]+)"?', line)
        if line.startswith("-A ") and found and not owner_alive(found.group(1)):
            deletes.append(["iptables", "-w", "5", "-D", *shlex.split(line)[1:]])
    return deletes


def replay_dead(journals: Path) -> int:
    """Replay the journals in `journals` whose processes are dead; how many entries."""
    healed = 0
    for journal in sorted(journals.glob("*.jsonl")) if journals.exists() else []:
        if not owner_alive(journal.stem):
            healed += _replay(journal)
    return healed


def sweep(journals: Path = JOURNALS, places: Iterable[Place] = ()) -> int:
    """Heal what killed runs left: their journals (each entry knows where its commands run,
    a node's host over SSH included), then any rule tagged by a dead process (a journal
    lost with its directory) on this host and at `places` (the hosts a topology names).
    Returns how many faults were healed."""
    healed = replay_dead(journals)
    for place in ([HERE] if privileged() else []) + list(places):
        with contextlib.suppress(HarnessError):
            for delete in stale_host_rules(run(place, ["iptables", "-w", "5", "-S"]).stdout):
                healed += run(place, delete, check=False).returncode == 0
    return healed


class KernelFaults:
    """The kernel engine: applies a fault's commands at a scope, heals them, and keeps the
    journal; `show` (for `--show-fault-commands`) receives every command before it runs."""

    name = "kernel"

    def __init__(self, journals: Path = JOURNALS, show: Callable[[str], None] | None = None) -> None:
        sweep(journals)
        self.tag = TAG_PREFIX + owner_tag()
        self.journal = Journal(journals / f"{owner_tag()}.jsonl")
        self.show = show
        atexit.register(self.heal_all)

    @classmethod
    @cache
    def shared(cls) -> "KernelFaults":
        """The process's engine: one journal and one exit hook, whatever uses it."""
        return cls()

    @staticmethod
    def missing(kind: FaultKind, place: Place = HERE) -> str | None:
        """Why `kind` cannot be injected at `place` (a sentence), or None."""
        needs = KINDS[kind].kernel
        if needs is None:
            return f"the kernel engine has no {kind} fault (it needs Toxiproxy)"
        if place.local and not privileged():
            return "kernel network faults need root or CAP_NET_ADMIN"
        tool = "iptables" if needs == "iptables" else "tc"
        if place.local and shutil.which(tool) is None:
            return f"`{tool}` is not installed here (scripts/setup.sh installs it)"
        if not kernel_supports(needs, place):
            kernel = "this host's kernel" if place.local else f"the kernel of {place.name}"
            return f"{kernel} has no {needs} (a {kind} fault needs it)"
        return None

    @contextlib.contextmanager
    def applied(self, kind: FaultKind, scope: Scope, **attributes: float) -> Iterator[list[str]]:
        """The fault in force for the body; yields the commands that applied it."""
        apply, heal = build(kind, scope, self.tag, attributes)
        entry = self.journal.add(scope.place, heal)
        try:
            for command in apply:
                self._run(scope.place, command)
            yield [shell_line(scope.place, c) for c in apply]
        finally:
            if self.show:
                for command in heal:
                    self.show(shell_line(scope.place, command))
            heal_at(scope.place, heal)
            self.journal.done(entry)

    def _run(self, place: Place, command: Command, check: bool = True) -> None:
        if self.show:
            self.show(shell_line(place, command))
        run(place, command, check=check)

    def heal_all(self) -> None:
        """Heal whatever is still in force (at exit: a fault whose `finally` never ran)."""
        for entry, (place, heal) in list(self.journal.pending.items()):
            heal_at(place, heal)
            self.journal.done(entry)
        self.journal.path.unlink(missing_ok=True)
