"""`harness probe`: check a topology against the live cluster before anything runs.

For every node and the entry, per protocol the topology gives: does it answer, which node
does the answer name (by the topology's identity rule) and is that the node the file says,
does TLS verify, is the login accepted; does each container named for control exist; does the
Toxiproxy server answer with the proxies the topology implies; do the evidence sources that
can be read without side effects answer (a GET request, a glob's folder). Those are
*problems*: known to be wrong, each one sentence; `pytest scenarios/ --topology` runs the
same probe first and stops on any.

What the probe can only guess is a *warning*, printed and never a stop: whether a control or
evidence command's program is there (`harness.commandline` reads the line as the shell would,
but a command may find what it needs on the way), a glob that matches no file yet, and a
cluster address that answers FTP or SMTP though the topology declares no entry for it (the
very thing C6 and C7 are about).

Probing sends no message and stores no file: HTTP sends the topology's request and the GET
evidence requests, FTP logs in and quits, SMTP says EHLO (STARTTLS, AUTH as configured) and
quits; an undeclared entry protocol is only connected to and its greeting read.
"""

from __future__ import annotations

import glob
import os
import re
import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from harness import commands
from harness.commandline import guess
from harness.config import DEFAULT_PORTS, PROTOCOLS, Protocol, Topology
from harness.errors import HarnessError
from harness.evidence import Source
from harness.model import within
from harness.fault_kinds import CONTROL_ACTIONS, KINDS, NETWORK_FAULTS, PEER_FAULTS
from harness.history.requests import RequestLog, RequestRecord
from harness.properties import Property
from harness.ssh import SshControl, explain
from harness.traffic.clients import ENTRY, FtpClient, HttpClient, SmtpClient, read_greeting

# Evidence sources the scenarios only read: a GET request or a glob among them is probed.
READ_ONLY_EVIDENCE = ("evidence.manifest.source", "evidence.replication.version",
                      "evidence.side_effects.recorded", "evidence.pools.connections")
GREETING_TIMEOUT_S = 1.0
ANSWER_TIMEOUT_S = 3.0  # an endpoint's answer, before it counts as none (greeters: see below)
# A balancer that has just seen nodes fail (the last run's faults, a restart) may answer 5xx
# until its fail timeout passes: asked again for this long before that counts as a problem.
SETTLE_S = 6.0
SETTLE_POLL_S = 0.25


@dataclass
class Row:
    """One endpoint probed: what it answered and what that means."""

    where: str
    protocol: str
    answered: bool
    node: str | None
    expected: str | None
    detail: str
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def identity(self) -> str:
        if self.node is None:
            return "-"
        if self.expected is None or self.node == self.expected:
            return self.node
        return f"{self.node} (expected {self.expected})"


@dataclass
class ProbeResult:
    rows: list[Row]
    control: dict[str, dict[str, str]]
    problems: list[str]
    """known to be wrong: the run stops"""
    warnings: list[str] = field(default_factory=list)
    """guesses that may be wrong: said, and the run goes on"""
    checked: list[str] = field(default_factory=list)
    """what else was asked and answered as it should (SSH logins, evidence sources, the
    entry's rotation), so a quiet probe says what it covered"""

    def table(self) -> str:
        """A fixed-width table of what was probed, then the control commands."""
        head = f"{'where':<12} {'protocol':<8} {'answers':<7} {'node named':<22} detail"
        lines = [head, "-" * len(head)]
        for r in self.rows:
            lines.append(f"{r.where:<12} {r.protocol:<8} {'yes' if r.answered else 'NO':<7} "
                         f"{r.identity:<22} {r.detail}")
        if self.control:
            lines += ["", f"{'node':<12} " + " ".join(f"{a:<11}" for a in CONTROL_ACTIONS)]
            for node, actions in self.control.items():
                lines.append(f"{node:<12} " + " ".join(f"{actions.get(a, '-'):<11}"
                                                       for a in CONTROL_ACTIONS))
        if self.checked:
            lines += ["", "also checked:", *(f"  {c}" for c in self.checked)]
        return "\n".join(lines)


def _label(where: str) -> str:
    """How a problem or warning names the endpoint probed."""
    return "the cluster entry" if where == ENTRY else f"node {where}"


def _row(where: str, record: RequestRecord, expected: str | None, detail: str) -> Row:
    answered = record.status is not None
    row = Row(where, record.protocol, answered, record.node, expected, detail)
    label = _label(where)
    if not answered:
        row.problems.append(f"{label} did not answer {record.protocol.upper()} at {record.url}: "
                            f"{record.error}")
    elif not record.ok:
        row.problems.append(f"{label} answered {record.protocol.upper()} at {record.url} but "
                            f"{record.error}")
    elif record.node is None:
        row.problems.append(f"{label}'s {record.protocol.upper()} answer names no node by the "
                            f"topology's identity rule (identity.{_identity_field(record.protocol)})")
    elif expected is not None and record.node != expected:
        row.problems.append(f"{label}'s {record.protocol.upper()} answer names node "
                            f"{record.node!r}, not {expected!r}: the ids in the file or the "
                            "identity rule are wrong")
    return row


def _identity_field(protocol: str) -> str:
    return "http" if protocol in ("http", "https") else protocol


def _tls_failed(record: RequestRecord) -> bool:
    return record.protocol == "https" and bool(record.error) and (
        "CERTIFICATE_VERIFY_FAILED" in (record.error or "") or "SSLError" in (record.error or ""))


def _verify_reason(record: RequestRecord) -> str:
    """Why OpenSSL refused the certificate, e.g. " (CA cert does not include key usage
    extension)": Python 3.13 verifies strictly, and a CA that passed before may not."""
    found = re.search(r"certificate verify failed: (.+?) \(_ssl", record.error or "")
    return f" ({found.group(1)})" if found else ""


def _tls_detail(record: RequestRecord, insecure: bool) -> str:
    if record.protocol != "https":
        return ""
    if insecure:
        return "TLS not verified (tls.insecure)"
    if _tls_failed(record):
        return "TLS verification FAILED"
    return "TLS verified" if record.status is not None else ""


def _probe_endpoint(topology: Topology, verify: str | bool, where: str, proto: Protocol,
                    expected: str | None) -> Row:
    log = RequestLog()
    if proto in ("http", "https"):
        client = HttpClient(topology, log, verify=verify, timeout_s=ANSWER_TIMEOUT_S)
        record, first = _settled_http(client, where, proto)
        detail = " ".join(x for x in (f"HTTP {record.status}" if record.status else "",
                                      _tls_detail(record, topology.tls.insecure)) if x)
        row = _row(where, record, expected, detail)
        waited = record.start_mono - first.start_mono
        label = _label(where)
        if first is not record and record.ok:
            row.warnings.append(
                f"{label} answered {proto.upper()} {first.status} at first and {record.status} "
                f"{waited:.1f} s later: it was still recovering (from the last run's faults?)")
        elif first is not record and row.problems:
            row.problems[-1] += f" (still, {waited:.1f} s after the first answer)"
        if record.status in (401, 403):
            row.problems[-1:] = [f"{label} refused the login over {proto.upper()} (HTTP {record.status}): "
                                 "check http.auth and its environment variables"]
        if _tls_failed(record):
            row.problems[-1:] = [f"TLS verification of {record.url} failed against "
                                 f"{topology.tls.ca_file or 'the system CAs'}{_verify_reason(record)}: "
                                 "check tls.ca_file"]
        return row
    if proto == "ftp":
        client = FtpClient(topology, log)

        def ftp_hello(timeout_s: float) -> RequestRecord:
            client.timeout_s = timeout_s
            with client.session(where) as session:
                return session.connect_record
        record, first = _patient_greeting(ftp_hello)
        login = "login refused" if record.detail.get("refused") else \
            f"login as {client.user!r} accepted" if record.ok else ""
        row = _row(where, record, expected, f"FTP {record.status or '-'} {login}".strip())
    else:
        record, first = _patient_greeting(
            lambda timeout_s: SmtpClient(topology, log, timeout_s=timeout_s, verify=verify).hello(where))
        login = " login refused" if record.detail.get("refused") else ""
        row = _row(where, record, expected, f"SMTP {record.status or '-'}{login}")
    if first is not record and record.status is not None:
        label = _label(where)
        row.warnings.append(f"{label} greeted over {proto.upper()} only after more than "
                            f"{ANSWER_TIMEOUT_S:.0f} s (asked again, waiting up to {SETTLE_S:.0f} s): "
                            "a loaded host, or a server that looks the client up before it greets")
    return row


def _control(topology: Topology, cwd: Path, elsewhere: Path | None
             ) -> tuple[dict[str, dict[str, str]], list[str], list[str], list[str]]:
    """The control table (ok, `?` for a doubt, `-` for none), the problems (a container the
    Docker engine does not know, an SSH login refused), the warnings (a program that may not
    be there, one line for the nodes sharing it) and what was checked (the SSH logins)."""
    table: dict[str, dict[str, str]] = {}
    problems: list[str] = []
    checked: list[str] = []
    doubts: dict[tuple[str, str], list[str]] = {}
    for node in topology.nodes:
        table[node.id] = {}
        for action in CONTROL_ACTIONS:
            line = node.control_line(action)
            if line is None:
                table[node.id][action] = "-"
                continue
            found = guess(line, os.environ, cwd, elsewhere)
            table[node.id][action] = "?" if found else "ok"
            for doubt in found:
                doubts.setdefault((action, doubt), []).append(node.id)
        if node.control.ssh:
            why = _ssh_refused(node.control.ssh, node.host)
            if why:
                problems.append(f"node {node.id}'s host cannot be controlled: {why} "
                                f"(nodes[{node.id}].control.ssh)")
            else:
                checked.append(f"SSH login {node.control.ssh.destination(node.host)} ({node.id}'s "
                               "host): accepted, host key known")
        if node.control.docker:
            name = node.control.docker.replace("{node}", node.id)
            why = _container_missing(name)
            if why:
                problems.append(f"node {node.id}'s container {name!r} {why} "
                                f"(nodes[{node.id}].control.docker)")
    warnings = [f"the {action} command of {', '.join(nodes)} may not run here: {doubt} "
                f"(nodes[{nodes[0]}].control.{action}; a guess, the run goes on)"
                for (action, doubt), nodes in doubts.items()]
    for worker in topology.load.workers:  # the load machines the harness would start workers on
        why = _ssh_refused(worker.ssh, worker.host)
        if why:
            problems.append(f"load machine {worker.host} cannot be reached: {why} (load.workers)")
        else:
            checked.append(f"SSH login {worker.ssh.destination(worker.host)} (load machine): "
                           "accepted, host key known")
    return table, problems, warnings, checked


def _ssh_refused(ssh: SshControl, host: str) -> str | None:
    """Why `true` does not run on the node's host over SSH (the door: a host key that is not
    the known one, a refused login, no server), or None. Known to be wrong, not a guess."""
    try:
        done = subprocess.run(ssh.argv(host, "true"), capture_output=True, text=True,
                              timeout=ssh.connect_timeout_s + 10, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        return f"`true` over SSH at {ssh.destination(host)} did not finish in time"
    except FileNotFoundError:
        return "the ssh command is not installed here (scripts/setup.sh installs it)"
    if done.returncode == 0:
        return None
    return explain(done.stderr, ssh.destination(host), ssh.known_hosts) or \
        f"`true` over SSH at {ssh.destination(host)} exited {done.returncode} " \
        f"({(done.stderr.strip().splitlines() or ['no output'])[-1]})"


def _container_missing(name: str) -> str | None:
    """Why the Docker engine cannot act on container `name`, or None."""
    if shutil.which("docker") is None:
        return "cannot be controlled: the docker command is not installed here"
    try:
        done = subprocess.run(["docker", "container", "inspect", name], capture_output=True,
                              text=True, timeout=10)
    except subprocess.TimeoutExpired:
        return "cannot be looked up: the Docker engine did not answer within 10 s"
    if done.returncode == 0:
        return None
    if "No such" in done.stderr or "no such" in done.stderr:
        return "is not known to the Docker engine"
    return f"cannot be looked up ({done.stderr.strip().splitlines()[-1:] or ['docker failed']}[0])"


def _toxiproxy(topology: Topology) -> list[str]:
    if not topology.toxiproxy:
        return []
    from urllib.parse import urlsplit

    from harness.toxiproxy import ToxiproxyApi

    parts = urlsplit(topology.toxiproxy)
    api = ToxiproxyApi(parts.hostname or "", parts.port or 8474)
    try:
        api.wait_ready(timeout_s=3)
        names = {p["name"] for p in api.state()}
    except HarnessError as e:
        return [f"{e} (toxiproxy)"]
    wanted = {f"{n.id}-{p}" for n in topology.nodes for p in PROTOCOLS if n.endpoints.get(p)}
    missing = sorted(wanted - names)
    return [f"the Toxiproxy server has no proxy {', '.join(missing)}; network faults on those "
            "links cannot be injected"] if missing else []


def _evidence(topology: Topology, verify: str | bool, cwd: Path, elsewhere: Path | None
              ) -> tuple[list[str], list[str], list[str]]:
    """(problems, warnings, checked) of the read-only evidence sources: a GET request must
    answer 2xx (on the first node, or where the source says); a glob's folder must exist, and
    a glob matching nothing yet is a warning; a command's program is a guess (a warning)."""
    problems: list[str] = []
    warnings: list[str] = []
    checked: list[str] = []
    first = topology.nodes[0]
    for source in (s for s in within(topology, Source) if s.field in READ_ONLY_EVIDENCE):
        where = source.field
        if source.request is not None:
            if source.request.method != "GET" or "{" in commands.render(
                    source.request.model_dump_json(), first.placeholders(), quote=False):
                continue  # may change something, or needs values only a scenario has
            target = source.node.replace("{node}", first.id)
            client = HttpClient(topology, RequestLog(), verify=verify, timeout_s=ANSWER_TIMEOUT_S)
            record = client.send(source.request, target, first.placeholders(), keep_text=False)
            if not record.ok:
                problems.append(f"{where}: GET {source.request.path} on {target} answered "
                                f"{record.status or record.error}")
            else:
                checked.append(f"{where}: GET {source.request.path} on {target} answered {record.status}")
        elif source.files is not None:
            pattern = str(cwd / commands.render(source.files, first.placeholders(), quote=False))
            folder = _fixed_folder(pattern)
            if not folder.is_dir():
                problems.append(f"{where}: the folder {folder} of the glob {pattern!r} does not exist")
            elif not any(Path(p).is_file() for p in glob.iglob(pattern, recursive=True)):
                warnings.append(f"{where}: the glob {pattern!r} matches no file yet (fine if "
                                "nothing was recorded yet; a guess, the run goes on)")
            else:
                checked.append(f"{where}: the glob {pattern!r} matches files")
        elif source.command is not None:
            line = commands.render(source.command, first.placeholders())
            warnings += [f"{where}'s command may not run here: {doubt} (a guess, the run goes on)"
                         for doubt in guess(line, os.environ, cwd, elsewhere)]
    return problems, warnings, checked


def _fixed_folder(pattern: str) -> Path:
    """The deepest folder of a glob before its first wildcard."""
    parts = Path(pattern).parts
    fixed = [p for p in parts[:next((i for i, p in enumerate(parts) if glob.has_magic(p)),
                                    len(parts))]]
    return Path(*fixed) if len(fixed) < len(parts) else Path(*fixed).parent


def _undeclared_entry_protocols(topology: Topology) -> list[str]:
    """Warnings for FTP or SMTP answered at the cluster address though the topology declares
    no entry for it: on the nodes' own port for the protocol, and the standard one."""
    url = topology.entry.http or topology.entry.https
    host = urlsplit(url).hostname if url else None
    if host is None:
        return []
    own = {(urlsplit(u).hostname, urlsplit(u).port) for n in topology.nodes
           for p in PROTOCOLS if (u := n.endpoints.get(p))}
    warnings = []
    for protocol, prop in (("ftp", Property.C6), ("smtp", Property.C7)):
        if topology.entry.get(protocol):
            continue
        ports = sorted({urlsplit(u).port or DEFAULT_PORTS[protocol] for n in topology.nodes
                        if (u := n.endpoints.get(protocol))} | {DEFAULT_PORTS[protocol]})
        for port in ports:
            if (host, port) in own:
                continue
            greeting = read_greeting(host, port, GREETING_TIMEOUT_S)
            if greeting:
                warnings.append(
                    f"the cluster address {host} answers on port {port} ({greeting.splitlines()[0]!r}), where "
                    f"{protocol.upper()} is served, but the topology declares no entry.{protocol}: "
                    f"declare it, so that {prop} checks that the entry does not redirect "
                    f"{protocol.upper()} to another node")
                break
    return warnings


def _patient_greeting(hello: Callable[[float], RequestRecord]) -> tuple[RequestRecord, RequestRecord]:
    """A greeter's hello with the probe's timeout, and once more waiting SETTLE_S if the
    greeting did not come in time: the answer it settled on and the first one. A refused
    connection or login is final at once; a greeting late on a loaded host is not "no answer"
    (measured: a container's OpenSMTPD, just started beside the suite's other clusters, took
    over 3 s once in 409 tests)."""
    first = hello(ANSWER_TIMEOUT_S)
    if first.status is None and "timed out" in (first.error or ""):
        return hello(SETTLE_S), first
    return first, first


def _settled_http(client: HttpClient, where: str, proto: Protocol) -> tuple[RequestRecord, RequestRecord]:
    """The topology's request to `where`, asked again while it answers 5xx for at most
    SETTLE_S: the answer it settled on and the first one. A 5xx is an answer, but one that a
    cluster recovering from its last faults gives for seconds; a refused login, a wrong node
    or no answer at all is final at once."""
    first = record = client.request(where, proto)
    deadline = time.monotonic() + SETTLE_S
    while record.status is not None and record.status >= 500 and time.monotonic() < deadline:
        time.sleep(SETTLE_POLL_S)
        record = client.request(where, proto)
    return record, first


def probe(topology: Topology) -> ProbeResult:
    """Probe every endpoint, control command, evidence source and the Toxiproxy server of
    `topology`. Commands are judged where they run, the topology file's folder."""
    verify: str | bool = False if topology.tls.insecure else \
        str(topology.tls.ca_file) if topology.tls.ca_file else True
    cwd = topology.directory or Path.cwd()
    elsewhere = Path.cwd() if Path.cwd() != cwd else None
    rows = [_probe_endpoint(topology, verify, ENTRY, p, None)
            for p in PROTOCOLS if topology.entry.get(p)]
    rows += [_probe_endpoint(topology, verify, n.id, p, n.id)
             for n in topology.nodes for p in PROTOCOLS if n.endpoints.get(p)]
    control, control_problems, control_warnings, control_checked = _control(topology, cwd, elsewhere)
    evidence_problems, evidence_warnings, evidence_checked = _evidence(topology, verify, cwd, elsewhere)
    rotation_warnings, rotation_checked = _rotation(topology, verify)
    problems = [p for r in rows for p in r.problems] + control_problems + \
        _toxiproxy(topology) + evidence_problems
    warnings = [w for r in rows for w in r.warnings] + control_warnings + evidence_warnings + \
        _undeclared_entry_protocols(topology) + rotation_warnings
    return ProbeResult(rows, control, problems, warnings,
                       control_checked + evidence_checked + rotation_checked)


ROTATION_REQUESTS = 12


def _rotation(topology: Topology, verify: str | bool) -> tuple[list[str], list[str]]:
    """Which nodes the entry's answers come from, over a few fresh connections: fewer than the
    topology names is a warning (a sticky or skewed balancer is C1's to judge, a node still
    held out after the last run's faults may come back), never a stop."""
    if topology.entry.http is None:
        return [], []
    log = RequestLog()
    client = HttpClient(topology, log, verify=verify, timeout_s=ANSWER_TIMEOUT_S, fresh_connections=True)
    for _ in range(ROTATION_REQUESTS):
        client.request(protocol="http")
    seen = sorted({r.node for r in log if r.ok and r.node})
    if not seen:
        return [], []  # no answer at all: the entry's row says so, as a problem
    missing = [n for n in topology.node_ids if n not in seen]
    said = f"{len(log)} requests through the entry over fresh connections were answered by {', '.join(seen)}"
    if missing:
        return [f"{said}, never by {', '.join(missing)} (a balancer holding them out after a "
                "fault, sticky or skewed: C1 judges the split; a guess, the run goes on)"], []
    return [], [f"{said}: every node in rotation"]


LINK_FAULTS = tuple(k for k in NETWORK_FAULTS if KINDS[k].kernel)
"""the kernel engine's faults on one of a node's links (slicer and limit_data are Toxiproxy's)"""


def fault_commands(topology: Topology, log: Path) -> str:
    """What the kernel engine would run on every node's links and between it and its peers
    (`harness probe --list-fault-commands`), each with its undo, or why a run would skip it.
    Nothing runs on another host, nothing is applied here: this host's kernel (and its
    namespaces') is asked, in a throwaway network namespace, whether it has what a fault needs,
    as a run asks (`docker inspect` finds containers' namespaces)."""
    from harness.cluster.external import kernel_scope
    from harness.kernel import KernelFaults, NoScope, planned

    state = topology.evidence.state
    lines = []
    for node in topology.nodes:
        links = [(p, LINK_FAULTS) for p in PROTOCOLS if node.endpoints.get(p)] + \
            ([("store", LINK_FAULTS)] if state and state.store_address else []) + \
            [(peer, PEER_FAULTS) for peer in (ENTRY, *(n for n in topology.node_ids if n != node.id))]
        for link, kinds in links:
            what = f"{node.id} from {link}" if kinds == PEER_FAULTS else f"{node.id} {link}"
            try:
                scope = kernel_scope(topology, node.id, link, log)
            except NoScope as e:
                lines.append(f"{what}: {e.reason}")
                continue
            lines.append(f"{what} (on {scope.place.name}):")
            for kind in kinds:
                spec = KINDS[kind]
                assert spec.kernel is not None
                if spec.kernel != "iptables" and scope.device is None:
                    lines.append(f"  {kind}: needs `{scope.device_field}`")
                    continue
                if scope.place.local and (why := KernelFaults.missing(kind, scope.place)):
                    lines.append(f"  {kind}: skipped by a run: {why}")
                    continue
                # another host's kernel is asked when a run starts, not by a listing
                asked = "" if scope.place.local or spec.kernel == "iptables" else \
                    f"; a run first asks that kernel for {spec.kernel} and skips it if missing"
                apply, heal = planned(kind, scope, **spec.attributes)
                lines += [f"  {kind} ({spec.summary}; {spec.kernel}{asked})"] + \
                    [f"    apply: {c}" for c in apply] + [f"    heal:  {c}" for c in heal]
    return "\n".join(lines)
