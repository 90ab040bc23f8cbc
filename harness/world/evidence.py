"""What client traffic cannot show, read from where the topology says it lives (`evidence`):
a node's manifest, its connections at the back end, what the cluster recorded. Readings made
while a scenario runs are recorded as observations, so a check judges the record, not the
cluster; what a scenario changes on a node (`toggled`, `undo`) it takes back.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from harness.cluster import Cluster
from harness.errors import ConfigurationError, HarnessError, NotApplicable
from harness.evidence import Call, Evidence, SideEffects, Source, Toggle, interpret
from harness.history.observations import ObservationLog
from harness.history.requests import RequestLog, RequestRecord
from harness.traffic.clients import HttpClient
from harness.world.reporter import Reporter


class EvidenceReader:
    def __init__(self, cluster: Cluster, directory: Path, observations: ObservationLog,
                 report: Reporter, who: str) -> None:
        self.cluster, self.observations, self.report, self.who = cluster, observations, report, who
        topology = cluster.topology

        def request(call: Call, target: str, values: dict[str, str]) -> tuple[bool, object, str]:
            record = HttpClient(topology, RequestLog(), verify=cluster.ca_file).send(
                call, target, values, keep_text=True)
            return record.ok, record.error or record.status, str(record.detail.get("text", ""))

        self.sources = Evidence(topology.evidence, request,
                                lambda node: topology.node(node).placeholders(), directory,
                                cwd=topology.directory)

    def fetch(self, source: Source, node: str | None = None, missing_ok: bool = False,
              **values: str) -> Any:
        return self.sources.fetch(source, node, missing_ok=missing_ok, **values)

    def act(self, source: Source, node: str | None = None, **values: str) -> None:
        self.sources.act(source, node, **values)

    def require(self, field: str) -> Any:
        """The topology's `evidence.<field>` (dotted), or `NotApplicable` naming the field: the
        one place a scenario names a field, since a field not given has no model to ask."""
        spec: Any = self.cluster.topology.evidence
        for part in field.split("."):
            spec = getattr(spec, part) if spec is not None else None
        if spec is None:
            raise NotApplicable(f"{self.who} needs `evidence.{field}` in the topology")
        return spec

    def observe(self, source: Source, what: str, nodes: list[str] | None = None,
                missing_ok: bool = False, **values: str) -> dict[str, object]:
        """Read `source` about each node, one round of readings recorded
        as observations of `what`; a reading that fails is recorded with its error. Returns
        the values read."""
        sample = self.observations.new_sample()
        read: dict[str, object] = {}
        for node in nodes or self.cluster.node_ids:
            try:
                read[node] = self.fetch(source, node, missing_ok=missing_ok, **values)
            except HarnessError as e:
                self.observations.add(what, node, None, sample, error=str(e))
                continue
            self.observations.add(what, node, read[node], sample)
        return read

    def read_answer(self, source: Source, record: RequestRecord) -> Any:
        """What `source` reads from the answer of a request `record` (sent with keep_text);
        None when the request failed."""
        if not record.ok:
            return None
        return interpret(source, str(record.detail.get("text", "")), source.field)

    def side_effects(self, spec: SideEffects) -> list[dict[str, object]]:
        """The side effects the cluster recorded, each `{kind, key}`; a plain key (a line of
        a mail spool) stands for a side effect of any kind."""
        recorded = self.fetch(spec.recorded)
        if not isinstance(recorded, list):
            raise ConfigurationError(f"{spec.recorded.field} answered "
                                     f"{type(recorded).__name__}, not a list of side effects")
        return [e if isinstance(e, dict) else {"key": str(e)} for e in recorded]

    @contextmanager
    def toggled(self, toggle: Toggle, nodes: list[str]) -> Iterator[None]:
        """Put `nodes` in the state `toggle` makes (e.g. unable to serve) for the body; always
        take them back out, so that a cluster of the user's is left as it was found."""
        made: list[str] = []
        with self.report.step(f"{toggle.make.field} on {', '.join(nodes)}"):
            try:
                for node in nodes:
                    self.act(toggle.make, node)
                    made.append(node)
                yield
            finally:
                for node in made:
                    self.act(toggle.undo, node)

    def undo(self, calls: list[Call], node: str) -> None:
        """Take back what a scenario changed on `node`, so that later scenarios find the
        cluster as this one did; a call that fails says so, naming its field."""
        http = HttpClient(self.cluster.topology, RequestLog(), verify=self.cluster.ca_file)
        for call in calls:
            record = http.send(call, node)
            if not record.ok:
                raise ConfigurationError(f"{call.field}: {call.method} {call.path} on {node} "
                                         f"failed ({record.error or record.status})")
