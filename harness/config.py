"""The topology: what the harness needs to know about a cluster, validated before anything runs.

A topology names the nodes, the cluster entry points per protocol, each node's own endpoints,
how to tell which node served a request, how to control a node, how to trust its TLS, and
which properties (C1-C14) the cluster claims. The reference cluster's backends build one in
code; for an external cluster the user writes it as YAML and `load_topology` reads it.

Every way a topology can be wrong ends in one `HarnessError` sentence naming the field, so a
user fixing a file never has to read a pydantic traceback.
"""

from __future__ import annotations

import ipaddress
import re
import shlex
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit

import yaml
from pydantic import Field, PrivateAttr, ValidationError, field_validator, model_validator

from harness.commands import render
from harness.errors import HarnessError
from harness.evidence import EvidenceSpec, Source
from harness.model import Strict as _Strict
from harness.model import stamp
from harness.properties import Property
from harness.ssh import SshControl

Protocol = Literal["http", "https", "ftp", "smtp"]
PROTOCOLS: tuple[Protocol, ...] = ("http", "https", "ftp", "smtp")
DEFAULT_PORTS = {"http": 80, "https": 443, "ftp": 21, "smtp": 25}


BalancingUnit = Literal["request", "connection"]
"""What a balancer balances: requests (an L7 balancer) or connections (an L4 one)."""


class Endpoints(_Strict):
    """URLs per protocol, e.g. `http://127.0.0.1:5555`, `ftp://127.0.0.1:2121`.

    Only scheme, host and port: anything else a URL can carry (user info, a path, a query) is
    refused, never silently ignored; credentials and request paths have fields of their own.
    """

    http: str | None = None
    """http://host:port"""
    https: str | None = None
    """https://host:port"""
    ftp: str | None = None
    """ftp://host:port"""
    smtp: str | None = None
    """smtp://host:port"""

    @model_validator(mode="after")
    def _schemes_match(self) -> "Endpoints":
        for proto in PROTOCOLS:
            url = getattr(self, proto)
            if url is None:
                continue
            parts = urlsplit(url)
            if parts.username is not None or parts.password is not None:
                shown = f"{proto}://{parts.hostname}" + (f":{parts.port}" if parts.port else "")
                where = ("ftp.user and ftp.password_env" if proto == "ftp" else
                         "smtp.user and smtp.password_env" if proto == "smtp" else "http.auth")
                raise ValueError(f"{proto} endpoint {shown} carries credentials in the URL; "
                                 f"give them in {where} (the password through an environment "
                                 "variable), never in the file")
            if parts.scheme != proto or not parts.hostname:
                raise ValueError(f"{proto} endpoint {url!r} must look like {proto}://host:port")
            try:
                parts.port
            except ValueError:
                raise ValueError(f"{proto} endpoint {url!r} has an invalid port") from None
            if parts.path not in ("", "/") or parts.query or parts.fragment:
                where = {"http": "http.request.path", "https": "http.request.path",
                         "ftp": "ftp.directory", "smtp": "smtp.recipient"}[proto]
                raise ValueError(f"{proto} endpoint {url!r} has a path or query the harness "
                                 f"does not use; give it in {where}")
        return self

    def get(self, proto: Protocol) -> str | None:
        return getattr(self, proto)

    def hosts(self) -> list[str]:
        return [urlsplit(u).hostname or "" for u in (self.get(p) for p in PROTOCOLS) if u]


def host_port(url: str) -> tuple[str, int]:
    """The (host, port) of an endpoint URL, with the protocol's default port."""
    parts = urlsplit(url)
    return parts.hostname or "", parts.port or DEFAULT_PORTS[parts.scheme]


class HttpIdentity(_Strict):
    """How an HTTP answer names the node that served it: exactly one of the three."""

    header: str | None = None
    """the answer header that names the node (e.g. X-Node-Id)"""
    json_field: str | None = None
    """the field of a JSON answer that names the node (dotted)"""
    regex: str | None = None
    """a regex over the answer's body; group `node` (or 1) names the node"""

    @model_validator(mode="after")
    def _exactly_one(self) -> "HttpIdentity":
        given = [k for k in ("header", "json_field", "regex") if getattr(self, k)]
        if len(given) != 1:
            raise ValueError("give exactly one of header, json_field, regex")
        if self.regex:
            _compile(self.regex)
        return self


class GreetingIdentity(_Strict):
    """A regex over the FTP or SMTP greeting; group `node` (or group 1) is the node id."""

    greeting_regex: str
    """a regex over the greeting as sent (every line with its code; `^` starts any line)"""

    @field_validator("greeting_regex")
    @classmethod
    def _compiles(cls, v: str) -> str:
        _compile(v)
        return v


def _compile(pattern: str) -> re.Pattern[str]:
    try:
        return re.compile(pattern)
    except re.error as e:
        raise ValueError(f"regex {pattern!r} does not compile: {e}") from None


class Identity(_Strict):
    http: HttpIdentity = HttpIdentity(header="X-Node-Id")
    """how an HTTP(S) answer names the node that served it"""
    ftp: GreetingIdentity = GreetingIdentity(greeting_regex=r"^220 (?P<node>\S+)")
    """how an FTP greeting names the node"""
    smtp: GreetingIdentity = GreetingIdentity(greeting_regex=r"^220 (?P<node>\S+)")
    """how an SMTP greeting names the node"""


class NodeControl(_Strict):
    """How to control a node of an external cluster: shell command templates (`{node}` is the
    node id, `{host}` the host of its first endpoint), or `docker`, a container name template
    for clusters run in Docker (kill, pause, resume and restart through the engine), or `ssh`,
    the node's host over SSH (`harness.ssh`): there its pidfile is signalled, its start
    command run, and the kernel faults applied. A command given beside `docker` replaces the
    engine's action; a command given beside `ssh` runs on the node's host."""

    kill: str | None = None
    """a command that kills the node (`{node}`, `{host}`)"""
    pause: str | None = None
    """a command that freezes it (SIGSTOP, docker pause)"""
    resume: str | None = None
    """a command that thaws it again"""
    restart: str | None = None
    """a command that starts it again after a kill (may return before it serves)"""
    unavailable: str | None = Field(default=None, description=(
        "turns the node's maintenance switch on: up, it answers HTTP 503 to every request"))
    available: str | None = Field(default=None, description="turns it off again")
    docker: str | None = None
    """the node's container name (`{node}`): kill, pause, resume and restart through the Docker engine"""
    ssh: SshControl | None = None
    """the node's host over SSH: its pidfile signalled, its start command run, kernel faults applied there"""
    timeout_s: Annotated[float, Field(gt=0, le=600)] = 60.0
    """how long a control command may take"""
    network: str | None = Field(default=None, description=(
        "where kernel network faults on this node run: a template around `{command}` (an "
        "iptables or tc command line) that passes every word whole, e.g. `printf '%s\\0' "
        "{command} | ssh {host} sudo xargs -0 env` (`ssh {host} {command}` re-splits them); "
        "default: inside the "
        "`docker` container's network namespace, or on this host for a loopback node"))
    network_device: str | None = Field(default=None, description=(
        "the device the node's packets leave by, for kernel bandwidth and latency faults "
        "(default: lo for a loopback node, eth0 in a container)"))

    def command(self, action: str) -> str | None:
        """The command template for `action`, from the field or from the docker form."""
        given = getattr(self, action)
        if given or not self.docker or action in ("unavailable", "available"):
            return given
        verb = {"kill": "kill --signal KILL", "pause": "pause", "resume": "unpause",
                "restart": "restart --time 1"}[action]
        return f"docker {verb} {self.docker}"


class NodeSpec(_Strict):
    id: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]+$")]
    """the node's name, as its answers name it"""
    endpoints: Endpoints
    """the node's own endpoints, per protocol"""
    control: NodeControl = NodeControl()
    """how to kill, pause, restart the node and fault its network"""

    @property
    def host(self) -> str:
        """The host of the node's first endpoint: what `{host}` stands for in templates."""
        hosts = self.endpoints.hosts()
        return hosts[0] if hosts else ""

    def placeholders(self) -> dict[str, str]:
        """What every command or request template about this node gets."""
        return {"node": self.id, "host": self.host}

    def control_line(self, action: str) -> str | None:
        """The shell line (placeholders filled in) that does `action` to this node: its
        command, run here or, with `control.ssh`, on its host; None if none is known."""
        template, ssh = self.control.command(action), self.control.ssh
        if ssh is None:
            return render(template, self.placeholders()) if template else None
        line = render(template or ssh.action(action) or "", self.placeholders())
        return shlex.join(ssh.argv(self.host, line)) if line else None


class Tls(_Strict):
    """Trust for HTTPS: a CA bundle to verify against, or `insecure: true` to skip it; and an
    optional client certificate (PEM files) for clusters that ask for one."""

    ca_file: Path | None = None
    """the cluster's CA certificate, HTTPS is verified against (the file's folder's)"""
    insecure: bool = False
    """do not verify HTTPS certificates (every verdict then says so)"""
    client_cert: Path | None = None
    """a client certificate, where the cluster asks for one"""
    client_key: Path | None = None
    """its key"""

    @model_validator(mode="after")
    def _key_needs_cert(self) -> "Tls":
        if self.client_key and not self.client_cert:
            raise ValueError("client_key needs client_cert")
        return self

    def files(self) -> dict[str, Path]:
        """The files the topology names, by field, to resolve and check."""
        return {name: path for name in ("ca_file", "client_cert", "client_key")
                if (path := getattr(self, name)) is not None}


EnvName = Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")]


class HttpRequest(_Strict):
    """The request the harness sends for load, readiness and node identity."""

    method: Literal["GET", "POST", "PUT", "HEAD"] = "GET"
    """the method"""
    path: Annotated[str, Field(pattern=r"^/")] = "/invoke/harness.demo:whoami"
    """the path every HTTP(S) request of the load sends"""
    headers: dict[str, str] = Field(default_factory=dict)
    """headers it sends (secrets go in http.auth, from the environment)"""
    body: str | None = None
    """its body"""
    expect_status: Annotated[int, Field(ge=100, le=599)] = 200
    """the status a served request answers with"""


class HttpAuth(_Strict):
    """One way to authenticate; secrets are named by environment variable, never written."""

    user: str | None = None
    """the Basic authentication user"""
    password_env: EnvName | None = None
    """the environment variable holding its password"""
    bearer_token_env: EnvName | None = None
    """the environment variable holding a bearer token"""
    headers_env: dict[str, EnvName] = Field(
        default_factory=dict, description="header name -> environment variable with its value")

    @model_validator(mode="after")
    def _one_way(self) -> "HttpAuth":
        ways = [bool(self.user or self.password_env), bool(self.bearer_token_env),
                bool(self.headers_env)]
        if sum(ways) != 1:
            raise ValueError("give one of user + password_env (Basic), bearer_token_env, headers_env")
        if bool(self.user) != bool(self.password_env):
            raise ValueError("Basic authentication needs both user and password_env")
        return self


class HttpSettings(_Strict):
    request: HttpRequest = HttpRequest()
    """what the load, the identity probes and the rotation waits send"""
    auth: HttpAuth | None = None
    """how to authenticate (secrets from environment variables only)"""


class FtpSettings(_Strict):
    """How to log in and where to upload. Without `password_env` the login is the reference
    cluster's demo login (harness/harness), or `anonymous`."""

    user: str = "harness"
    """the FTP user"""
    password_env: EnvName | None = None
    """the environment variable holding its password"""
    anonymous: bool = False
    """log in anonymously"""
    directory: str | None = None
    """where uploads go"""
    passive: bool = True
    """passive data connections (the usual way through balancers)"""


class SmtpSettings(_Strict):
    sender: str = "harness@harness.invalid"
    """the envelope's sender"""
    recipient: str = "orders@harness.invalid"
    """the envelope's recipient"""
    starttls: bool = False
    """upgrade the session with STARTTLS"""
    user: str | None = None
    """the SMTP AUTH user"""
    password_env: EnvName | None = None
    """the environment variable holding its password"""

    @model_validator(mode="after")
    def _auth_pair(self) -> "SmtpSettings":
        if bool(self.user) != bool(self.password_env):
            raise ValueError("SMTP AUTH needs both user and password_env")
        return self


class Safety(_Strict):
    """What keeps a cluster people depend on safe while it is faulted (docs/safety.md); the
    stop conditions here are the team's defaults, which the options of the same name override."""

    health: Source | None = None
    """the cluster's own health check: healthy when it reads without error (a request
    answering 2xx, a command exiting 0); checked before every fault"""
    min_healthy_nodes: Annotated[int, Field(ge=0)] | None = None
    """stop the run when fewer nodes than this answer, those under its own faults aside
    (--min-healthy-nodes; default 1)"""
    stop_error_rate: Annotated[float, Field(gt=0, le=1)] | None = None
    """stop the run when the entry fails more than this share of its answers over 5 s with
    none of its faults in force or recovering (--stop-error-rate; default 0.5)"""
    stop_health_seconds: Annotated[float, Field(gt=0)] | None = None
    """stop the run when `health` fails this long (--stop-health-seconds; default 10)"""


class LoadWorker(_Strict):
    """A load machine the harness starts a load worker on over SSH, and stops again."""

    host: str
    """the load machine's address (the SSH login's host unless `ssh.host` says)"""
    ssh: SshControl = Field(description="the login there, as `control.ssh` names one (its "
                                        "pidfile and start are not used)")
    command: str = Field(default="harness worker", description=(
        "what starts a worker there, as the harness is installed on that machine"))


class LoadMachines(_Strict):
    """Where load comes from when it is not this machine: Locust's distributed mode, this
    machine the master."""

    master: str | None = Field(default=None, description=(
        "HOST[:PORT] this machine's master listens on, as the workers reach it (default "
        "127.0.0.1:5557; --load-master overrides it)"))
    workers: list[LoadWorker] = Field(default_factory=list, description=(
        "machines the harness starts a worker on over SSH for the run and stops after; "
        "workers started by hand (`harness worker --master HOST:PORT`) are not listed"))


class Topology(_Strict):
    name: str = "cluster"
    """a name for reports"""
    nodes: Annotated[list[NodeSpec], Field(min_length=1)]
    """the cluster's nodes"""
    entry: Endpoints
    """the cluster's entry point per protocol (the balancer)"""
    identity: Identity = Identity()
    """how answers name the node that served them"""
    tls: Tls = Tls()
    """how HTTPS is verified"""
    http: HttpSettings = HttpSettings()
    """the request the load sends, and authentication"""
    ftp: FtpSettings = FtpSettings()
    """how FTP sessions log in and upload"""
    smtp: SmtpSettings = SmtpSettings()
    """how SMTP sessions send"""
    claims: list[Property] = Field(default_factory=lambda: list(Property))
    """the properties the cluster claims (C1-C14); the others are skipped, saying so"""
    toxiproxy: str | None = Field(
        default=None, description="API URL of a Toxiproxy server in front of the nodes"
    )
    evidence: EvidenceSpec = Field(
        default_factory=EvidenceSpec,
        description="where the evidence lives that client traffic cannot show (C7-C14)")
    balancing: Literal["auto"] | BalancingUnit = Field(
        default="auto",
        description="what the balancer balances: requests (L7), connections (L4), or found out",
    )
    safety: Safety = Field(default_factory=Safety, description=(
        "what must hold before the harness faults the cluster (its health check)"))
    load: LoadMachines = Field(default_factory=LoadMachines, description=(
        "load machines of the team's own (Locust's distributed mode), for --load-workers"))
    _directory: Path | None = PrivateAttr(None)

    @property
    def directory(self) -> Path | None:
        """The folder of the topology file: commands run there, and relative paths in the
        file (TLS files, evidence globs, scripts) start there, as docker compose reads its
        file's paths. None for a topology that came from no file: the current directory."""
        return self._directory

    @model_validator(mode="after")
    def _unique_ids(self) -> "Topology":
        ids = [n.id for n in self.nodes]
        dup = sorted({i for i in ids if ids.count(i) > 1})
        if dup:
            raise ValueError(f"node ids must be unique, repeated: {', '.join(dup)}")
        stamp(self)
        return self

    def node(self, node_id: str) -> NodeSpec:
        for n in self.nodes:
            if n.id == node_id:
                return n
        raise HarnessError(f"the topology has no node {node_id!r}")

    @property
    def node_ids(self) -> list[str]:
        return [n.id for n in self.nodes]

    def claims_property(self, prop: Property | str) -> bool:
        return Property(prop) in self.claims

    def all_hosts(self) -> list[str]:
        hosts = self.entry.hosts() + [h for n in self.nodes for h in n.endpoints.hosts()]
        if self.toxiproxy:
            hosts.append(urlsplit(self.toxiproxy).hostname or "")
        hosts += [h for w in self.load.workers for h in (w.host, *w.ssh.hosts())]
        return hosts + [h for n in self.nodes if n.control.ssh for h in n.control.ssh.hosts()]


SCHEMA_FILE = Path(__file__).with_name("topology.schema.json")
"""The topology's JSON Schema, shipped in the package (`clusterproof schema` writes it anew)."""


def topology_schema() -> dict[str, object]:
    """The JSON Schema of a topology file, for editors (yaml-language-server) to validate and
    complete: the model's own, with the file's `x-` keys (YAML anchors) allowed at the top."""
    schema = Topology.model_json_schema()
    schema.update({"$schema": "https://json-schema.org/draft/2020-12/schema",
                   "title": "clusterproof topology",
                   "patternProperties": {"^x-": {}}})
    return schema


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_targets(topology: Topology, allow_remote: bool) -> None:
    """The network rule: only loopback targets unless the user opted in explicitly."""
    if allow_remote:
        return
    for host in topology.all_hosts():
        if not is_loopback(host):
            raise HarnessError(
                f"the topology targets {host!r}, which is not a loopback address; "
                "pass --allow-remote-targets to test a cluster on other hosts"
            )


def _describe(err: ValidationError, source: str) -> str:
    first = err.errors()[0]
    where = ".".join(str(p) for p in first["loc"]) or "(top level)"
    kind, msg = first["type"], first["msg"]
    if kind == "extra_forbidden":
        return f"{source}: field {where!r} is not a topology field"
    if kind == "missing":
        return f"{source}: field {where!r} is required"
    msg = msg.removeprefix("Value error, ")
    return f"{source}: field {where!r}: {msg}"


def parse_topology(data: object, source: str = "topology", allow_remote: bool = False) -> Topology:
    if not isinstance(data, dict):
        raise HarnessError(f"{source}: a topology is a mapping with at least 'nodes' and 'entry'")
    # top-level `x-` keys are the file's own (YAML anchors shared by nodes), as in Compose files
    data = {k: v for k, v in data.items() if not str(k).startswith("x-")}
    try:
        topo = Topology.model_validate(data)
    except ValidationError as e:
        raise HarnessError(_describe(e, source)) from None
    check_targets(topo, allow_remote)
    return topo


def load_topology(path: str | Path, allow_remote: bool = False) -> Topology:
    """Read and validate a topology file; any problem is one `HarnessError` sentence."""
    p = Path(path)
    if not p.is_file():
        raise HarnessError(f"topology file {str(p)!r} does not exist")
    try:
        data = yaml.safe_load(p.read_bytes().decode("utf-8"))
    except UnicodeDecodeError as e:
        raise HarnessError(f"topology file {str(p)!r} is not UTF-8 text "
                           f"(byte 0x{e.object[e.start]:02x} at offset {e.start})") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        line = f" at line {mark.line + 1}" if mark else ""
        raise HarnessError(f"topology file {str(p)!r} is not valid YAML{line}") from None
    topo = parse_topology(data, source=str(p), allow_remote=allow_remote)
    files = {name: f if f.is_absolute() else p.parent / f for name, f in topo.tls.files().items()}
    for name, f in files.items():
        if not f.is_file():
            raise HarnessError(f"{p}: field 'tls.{name}': {str(f)!r} does not exist")
    topo = topo.model_copy(update={"tls": topo.tls.model_copy(update=files),
                                   "nodes": [_ssh_files(n, p) for n in topo.nodes],
                                   "load": topo.load.model_copy(update={"workers": [
                                       w.model_copy(update={"ssh": _resolved(w.ssh, p, f"load.workers[{w.host}]")})
                                       for w in topo.load.workers]})})
    topo._directory = p.resolve().parent
    return topo


def _ssh_files(node: NodeSpec, topology_file: Path) -> NodeSpec:
    """The node with its `control.ssh` files resolved from the topology's folder and there:
    a missing known-hosts file would make every host key a mismatch."""
    ssh = node.control.ssh
    if ssh is None:
        return node
    ssh = _resolved(ssh, topology_file, f"nodes[{node.id}].control")
    return node.model_copy(update={"control": node.control.model_copy(update={"ssh": ssh})})


def _resolved(ssh: SshControl, topology_file: Path, where: str) -> SshControl:
    """An ssh login's files resolved from the topology's folder, and there."""
    ssh = ssh.resolved(topology_file.parent)
    for name, f in ssh.files().items():
        if not f.is_file():
            raise HarnessError(f"{topology_file}: field '{where}.ssh.{name}': {str(f)!r} does not exist")
    return ssh
