"""Evidence that client traffic alone cannot show, described in the topology (`evidence:`).

C7-C14 need more than answers to client requests: a node's manifest (C11), a way to make a
node unable to serve (C8), the administrative services (C9), state written and read back
(C10), the back end's connection count (C12), a way to add a node (C13), the side effects
the cluster recorded (C7, C14). Each is described per property in the topology; a source is
an HTTP request (with the topology's authentication), a command template, or a file glob,
plus how to read its answer: a JSON path, a regex (its matches, or how many), or lines.

Scenarios ask `Evidence` for what they need and never name a service: the reference backends
describe their own cluster in these same terms (requests to their administrative services,
`redis-cli` for the back end), so the built-in path and an external cluster's are one path.
A scenario whose evidence is not described is skipped naming the field; an answer in an
unexpected shape is a configuration error in one sentence, never a crash or a verdict.
"""

from __future__ import annotations

import glob
import json
import re
import tempfile
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator

from harness import commands
from harness.errors import ConfigurationError
from harness.history.requests import ENTRY
from harness.model import Strict as _Strict


class Call(_Strict):
    """An HTTP request to one node (or the entry); every string may hold placeholders."""

    method: Literal["GET", "POST", "PUT", "DELETE"] = "GET"
    """the method"""
    path: Annotated[str, Field(pattern=r"^/")]
    """the path (`{key}`, `{value}`, ... filled in)"""
    params: dict[str, str] = Field(default_factory=dict)
    """query parameters"""
    body: str | None = None
    """a body"""
    expect_status: int | None = None
    """None: any 2xx"""


class Source(_Strict):
    """Where evidence comes from (one of `request`, `command`, `files`) and how to read it.

    Read: `json_path` (dotted, list indexes as numbers) into a JSON answer; `regex` over the
    text, giving every match (group `value` or 1) or, with `count`, how many; `lines`, the
    non-empty lines; none of them, the JSON answer (or the text).
    """

    request: Call | None = None
    """an HTTP request (with the topology's authentication) to `node`"""
    command: str | None = None
    """a command template run here (`{node}`, `{host}`)"""
    files: str | None = None
    """a glob (`**` reaches into subdirectories); the files' texts, joined, are read"""
    node: str = "{node}"
    """where a request goes: `{node}` (the node asked about, or the entry for evidence about
    the whole cluster), a node id, or `entry`"""
    timeout_s: Annotated[float, Field(gt=0, le=600)] = 30.0
    """how long reading may take"""
    json_path: str | None = None
    """read a JSON answer at this dotted path (list indexes as numbers)"""
    regex: str | None = None
    """read every match of this regex (group `value` or 1)"""
    count: bool = False
    """with `regex`: how many matches"""
    lines: bool = False
    """read the non-empty lines"""

    @model_validator(mode="after")
    def _one_source(self) -> "Source":
        if sum(x is not None for x in (self.request, self.command, self.files)) != 1:
            raise ValueError("give exactly one of request, command, files")
        if self.regex:
            try:
                re.compile(self.regex)
            except re.error as e:
                raise ValueError(f"regex {self.regex!r} does not compile: {e}") from None
        return self


class Manifest(_Strict):
    """C11: what each node reports (versions, packages, connections, services)."""

    source: Source
    """each node's manifest (versions, packages, connections, services)"""
    ignore: list[str] = Field(default_factory=list, description="node-specific top-level fields")


class Replication(_Strict):
    """C11: publish a package version on one node (`{version}`), read it on each."""

    publish: Source
    """publishes a package version (`{version}`) on one node"""
    version: Source
    """reads the version a node has of it"""


class Toggle(_Strict):
    """A pair: `make` puts a node in a state (`{node}`), `undo` takes it back out."""

    make: Source
    """puts a node (`{node}`) into the state"""
    undo: Source
    """takes it out again"""


class Redirect(_Strict):
    """C8: make a node unable to serve `service`; it should redirect to a node that can."""

    unable: Toggle
    """makes a node unable to serve `service`, and able again"""
    service: Call
    """the service a node that cannot serve redirects"""


class Admin(_Strict):
    """C9: administrative services, each addressed per node; and how to make a node redirect
    every other request (quiescing), so that the exclusion is put to the test."""

    services: Annotated[list[Call], Field(min_length=1)]
    """the administrative services, each addressed per node"""
    redirecting: Toggle | None = None
    """makes a node redirect other requests (quiescing), and stop"""
    undo: list[Call] = Field(default_factory=list, description=(
        "calls that take back what `services` changed on the node (a configuration they "
        "saved), made after the check, so that later scenarios find the nodes identical"))


class State(_Strict):
    """C10: write a value (`{key}`, `{value}`) through one node and read it through another;
    a stateful session whose counter must go on across nodes; the nodes' link to the store."""

    write: Call
    """writes a cached value (`{key}`, `{value}`) through a node"""
    read: Source
    """reads it (`{key}`) through a node"""
    session: Source | None = None
    """a request whose answer (read by the source) is the session's counter, 1, 2, 3, ..."""
    store_link: str | None = None
    """the Toxiproxy link name between a node and the shared store (`<node>-<link>`)"""
    store_cut: Toggle | None = None
    """or a pair that cuts a node (`{node}`) off the shared store and heals it"""
    store_address: str | dict[str, str] | None = None
    """or the store's `host:port` as the nodes reach it (per node id, if it differs), for
    kernel faults (`--network-faults kernel`)"""

    def store_address_of(self, node: str) -> tuple[str, int] | None:
        given = self.store_address.get(node) if isinstance(self.store_address, dict) else self.store_address
        if not given:
            return None
        host, _, port = given.rpartition(":")
        return host, int(port)

    @field_validator("store_address")
    @classmethod
    def _host_and_port(cls, value: str | dict[str, str] | None) -> str | dict[str, str] | None:
        for address in (value.values() if isinstance(value, dict) else [value] if value else []):
            host, _, port = address.rpartition(":")
            if not host or not port.isdigit():
                raise ValueError(f"{address!r} is not host:port")
        return value

    @model_validator(mode="after")
    def _reads_are_requests(self) -> "State":
        for name in ("read", "session"):
            source = getattr(self, name)
            if source is not None and source.request is None:
                raise ValueError(f"{name} must be a request: state is read through a node")
        return self


class Pools(_Strict):
    """C12: the back end's connection count for each node, and the sizes the operator
    expects; `load` is a request that uses a pooled connection."""

    connections: Source
    """a node's connections at the back end (`{node}`)"""
    pool_size: Annotated[int, Field(ge=1)]
    """each node's pool size"""
    backend_limit: Annotated[int, Field(ge=1)]
    """the connections the back end allows"""
    load: Call
    """a request that uses the pool"""


class SideEffects(_Strict):
    """C7, C14: every side effect the cluster recorded, as a list of {kind, key}; and the
    request that places an order with an idempotency key (`{key}`)."""

    recorded: Source
    """every message or order the cluster recorded (a list of {kind, key}, or keys)"""
    order: Call | None = None
    """a request that places an order (`{key}`: its idempotency key)"""


class Scale(_Strict):
    """C13: a request that saturates a node (default: the topology's request); for an
    external cluster, a command that adds a node and prints its id as its last line, and one
    that removes it again (`{node}`)."""

    load: Call | None = None
    """the request a saturation search repeats (default: http.request)"""
    add: str | None = None
    """a command that adds a node and prints its id as its last line"""
    remove: str | None = None
    """a command that removes it again (`{node}`)"""
    timeout_s: Annotated[float, Field(gt=0, le=600)] = 120.0
    """how long adding or removing may take"""

    @model_validator(mode="after")
    def _both_or_neither(self) -> "Scale":
        if (self.add is None) != (self.remove is None):
            raise ValueError("give both add and remove: a node the harness adds it also removes")
        return self


class EvidenceSpec(_Strict):
    manifest: Manifest | None = None
    """C11: each node's manifest"""
    replication: Replication | None = None
    """C11: a package replicated to every node"""
    redirect: Redirect | None = None
    """C8: a node unable to serve redirects"""
    admin: Admin | None = None
    """C9: administrative services"""
    state: State | None = None
    """C10: shared state"""
    pools: Pools | None = None
    """C12: per-node pools, counted at the back end"""
    side_effects: SideEffects | None = None
    """C7, C14: what the cluster recorded"""
    scale: Scale | None = None
    """C13: adding and removing a node"""


def read_path(value: Any, path: str, where: str, missing_ok: bool = False) -> Any:
    """`value` at the dotted `path`; a missing step is a configuration error naming it, or
    None with `missing_ok` (where absence is itself evidence: a package not yet there)."""
    for step in path.split("."):
        if isinstance(value, dict) and step in value:
            value = value[step]
        elif isinstance(value, list) and step.isdigit() and int(step) < len(value):
            value = value[int(step)]
        elif missing_ok:
            return None
        else:
            raise ConfigurationError(f"{where} answered without {step!r} at json_path {path!r}")
    return value


def interpret(source: Source, text: str, where: str,
              placeholders: dict[str, str] | None = None, missing_ok: bool = False) -> Any:
    """What `source` reads from an answer's text (placeholders in a regex match literally)."""
    if source.regex:
        pattern = source.regex
        for name, value in (placeholders or {}).items():
            pattern = pattern.replace("{" + name + "}", re.escape(value))
        matches = list(re.finditer(pattern, text, re.MULTILINE))
        if source.count:
            return len(matches)
        return [m.group("value") if "value" in m.re.groupindex else
                m.group(1) if m.re.groups else m.group(0) for m in matches]
    if source.lines:
        return [line for line in text.splitlines() if line.strip()]
    try:
        value = json.loads(text)
    except ValueError:
        if source.json_path:
            raise ConfigurationError(f"{where} did not answer JSON, so json_path "
                                     f"{source.json_path!r} cannot be read") from None
        return text
    return read_path(value, source.json_path, where, missing_ok) if source.json_path else value


class Evidence:
    """Reads the topology's evidence sources for one cluster: requests through the
    topology's HTTP client, commands through `harness.commands`, files from disk."""

    def __init__(self, spec: EvidenceSpec, request: Any, node_values: Any,
                 directory: Path | None = None, cwd: Path | None = None) -> None:
        """`request(call, node, values) -> (ok, status, text)`; `node_values(node) -> dict`;
        `cwd`: where commands run and relative globs start (the topology file's folder)."""
        self.spec = spec
        self.cwd = cwd
        self._request = request
        self._node_values = node_values
        self.directory = directory or Path(tempfile.mkdtemp(prefix="harness-evidence-"))

    def fetch(self, source: Source, node: str | None = None, missing_ok: bool = False,
              **values: str) -> Any:
        """Read `source` about `node`, with extra placeholders; `missing_ok`: an answer
        without the json_path reads as None. Errors name the source's field."""
        placeholders = {**(self._node_values(node) if node else {}), **values}
        where = (source.field or "evidence") + (f" for {node}" if node else "")
        if source.request is not None:
            target = source.node.replace("{node}", node or ENTRY)
            ok, status, text = self._request(source.request, target, placeholders)
            if not ok:
                raise ConfigurationError(f"{where}: {source.request.method} {source.request.path} "
                                         f"on {target} answered {status}")
        elif source.command is not None:
            log = self.directory / "evidence-commands.log"
            text = commands.run(source.command, placeholders, log, source.timeout_s, where,
                                cwd=self.cwd)
        else:
            pattern = str((self.cwd or Path()) / commands.render(source.files or "", placeholders,
                                                                 quote=False))
            paths = sorted(p for p in glob.glob(pattern, recursive=True) if Path(p).is_file())
            text = "\n".join(Path(p).read_text(errors="replace") for p in paths)
        return interpret(source, text, where, placeholders, missing_ok)

    def act(self, source: Source, node: str | None = None, **values: str) -> None:
        """Run `source` for its effect (a toggle, a publish), failing in one sentence."""
        self.fetch(source, node, **values)
