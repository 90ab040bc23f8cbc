"""`harness probe`: check a topology against the live cluster before anything runs.

For every node and the entry, per protocol the topology gives: does it answer, which node
does the answer name (by the topology's identity rule) and is that the node the file says,
does TLS verify, is the login accepted; for every node, is each control command there; and
does the Toxiproxy server answer with the proxies the topology implies. Each problem is one
sentence; `pytest scenarios/ --topology` runs the same probe first and stops on any.

Probing sends no message and stores no file: HTTP sends the topology's request, FTP logs in
and quits, SMTP says EHLO (STARTTLS, AUTH as configured) and quits.
"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from harness.config import PROTOCOLS, Protocol, Topology
from harness.errors import HarnessError
from harness.traffic.clients import ENTRY, FtpClient, HttpClient, SmtpClient
from harness.traffic.log import RequestLog, RequestRecord

CONTROL_ACTIONS = ("kill", "pause", "resume", "restart")
SHELL_WORDS = {"exec", "env", "sudo", "nohup", "timeout", "sh", "bash"}


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

    def table(self) -> str:
        """A fixed-width table of what was probed, then the control commands."""
        head = f"{'where':<12} {'protocol':<8} {'answers':<7} {'node named':<22} detail"
        lines = [head, "-" * len(head)]
        for r in self.rows:
            lines.append(f"{r.where:<12} {r.protocol:<8} {'yes' if r.answered else 'NO':<7} "
                         f"{r.identity:<22} {r.detail}")
        if self.control:
            lines += ["", f"{'node':<12} " + " ".join(f"{a:<10}" for a in CONTROL_ACTIONS)]
            for node, actions in self.control.items():
                lines.append(f"{node:<12} " + " ".join(f"{actions.get(a, '-'):<10}"
                                                      for a in CONTROL_ACTIONS))
        return "\n".join(lines)


def _row(where: str, record: RequestRecord, expected: str | None, detail: str) -> Row:
    answered = record.status is not None
    row = Row(where, record.protocol, answered, record.node, expected, detail)
    label = "the cluster entry" if where == ENTRY else f"node {where}"
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
        record = HttpClient(topology, log, verify=verify, timeout_s=3.0).request(where, proto)
        detail = " ".join(x for x in (f"HTTP {record.status}" if record.status else "",
                                      _tls_detail(record, topology.tls.insecure)) if x)
        row = _row(where, record, expected, detail)
        if record.status in (401, 403):
            row.problems[-1:] = [f"{'the cluster entry' if where == ENTRY else f'node {where}'} "
                                 f"refused the login over {proto.upper()} (HTTP {record.status}): "
                                 "check http.auth and its environment variables"]
        if _tls_failed(record):
            row.problems[-1:] = [f"TLS verification of {record.url} failed against "
                                 f"{topology.tls.ca_file or 'the system CAs'}{_verify_reason(record)}: "
                                 "check tls.ca_file"]
        return row
    if proto == "ftp":
        client = FtpClient(topology, log, timeout_s=3.0)
        with client.session(where) as session:
            record = session.connect_record
        login = "login refused" if record.detail.get("refused") else \
            f"login as {client.user!r} accepted" if record.ok else ""
        return _row(where, record, expected, f"FTP {record.status or '-'} {login}".strip())
    record = SmtpClient(topology, log, timeout_s=3.0, verify=verify).hello(where)
    login = " login refused" if record.detail.get("refused") else ""
    return _row(where, record, expected, f"SMTP {record.status or '-'}{login}")


def _command_present(command: str) -> str | None:
    """Why the command's program cannot run here, or None if it can be found."""
    try:
        words = shlex.split(command)
    except ValueError as e:
        return f"does not parse ({e})"
    program = next((w for w in words if "=" not in w and w not in SHELL_WORDS), None)
    if program is None or shutil.which(program.replace("{node}", "x")):
        return None
    return f"`{program}` is not on PATH"


def _control(topology: Topology) -> tuple[dict[str, dict[str, str]], list[str]]:
    table: dict[str, dict[str, str]] = {}
    problems: list[str] = []
    for node in topology.nodes:
        table[node.id] = {}
        for action in CONTROL_ACTIONS:
            template = node.control.command(action)
            if template is None:
                table[node.id][action] = "-"
                continue
            why = _command_present(template)
            table[node.id][action] = "ok" if why is None else "MISSING"
            if why:
                problems.append(f"node {node.id}'s {action} command {why} "
                                f"(nodes[{node.id}].control.{action})")
        if node.control.docker:
            name = node.control.docker.replace("{node}", node.id)
            if not _container_exists(name):
                problems.append(f"node {node.id}'s container {name!r} is not known to the Docker "
                                f"engine (nodes[{node.id}].control.docker)")
    return table, problems


def _container_exists(name: str) -> bool:
    if shutil.which("docker") is None:
        return False
    try:
        return subprocess.run(["docker", "container", "inspect", name], capture_output=True,
                              timeout=10).returncode == 0
    except subprocess.TimeoutExpired:
        return False


def _toxiproxy(topology: Topology) -> list[str]:
    if not topology.toxiproxy:
        return []
    from urllib.parse import urlsplit

    from harness.cluster.toxiproxy import ToxiproxyApi

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


def probe(topology: Topology) -> ProbeResult:
    """Probe every endpoint, control command and the Toxiproxy server of `topology`."""
    verify: str | bool = False if topology.tls.insecure else \
        str(topology.tls.ca_file) if topology.tls.ca_file else True
    rows = [_probe_endpoint(topology, verify, ENTRY, p, None)
            for p in PROTOCOLS if topology.entry.get(p)]
    rows += [_probe_endpoint(topology, verify, n.id, p, n.id)
             for n in topology.nodes for p in PROTOCOLS if n.endpoints.get(p)]
    control, control_problems = _control(topology)
    problems = [p for r in rows for p in r.problems] + control_problems + _toxiproxy(topology)
    return ProbeResult(rows, control, problems)


# The kernel faults a listing shows; `reset_peer` is `cut`'s rule and `drop` `timeout`'s.
LISTED_FAULTS = {"cut": "refused: REJECT with a TCP reset", "timeout": "black hole: DROP",
                 "bandwidth": "tbf at 1 KB/s", "latency": "netem, 1 s"}


def fault_commands(topology: Topology, log: Path) -> str:
    """What the kernel engine would run on every node's links (`--show-fault-commands`):
    nothing is run but `docker inspect` for containers' namespaces."""
    from harness.cluster.external import kernel_scope
    from harness.kernel import NoScope, planned

    state = topology.evidence.state
    lines = []
    for node in topology.nodes:
        links = [p for p in PROTOCOLS if node.endpoints.get(p)] + \
            (["store"] if state and state.store_address else [])
        for link in links:
            try:
                scope = kernel_scope(topology, node.id, link, log)
            except NoScope as e:
                lines.append(f"{node.id} {link}: needs `{e.field}` for kernel faults")
                continue
            lines.append(f"{node.id} {link} (on {scope.place.name}):")
            for kind, what in LISTED_FAULTS.items():
                if kind in ("bandwidth", "latency") and scope.device is None:
                    lines.append(f"  {kind}: needs `{scope.device_field}`")
                    continue
                apply, heal = planned(kind, scope, rate=1, latency=1000)
                lines += [f"  {kind} ({what})"] + [f"    apply: {c}" for c in apply] + \
                    [f"    heal:  {c}" for c in heal]
    return "\n".join(lines)
