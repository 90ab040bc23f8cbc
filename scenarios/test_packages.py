"""C11: every node reports the same versions, packages, connections and services, and a
replicated package reaches every node within a bound."""

import time
import uuid

import pytest

from harness import checks
from harness.errors import ConfigurationError

POLL_S = 0.05
VERSION = "package version"


@pytest.mark.packages
@pytest.mark.http
def test_every_node_reports_the_same_manifest(scenario):
    spec = scenario.evidence.require("manifest")
    manifests = {}
    for node in scenario.nodes:
        manifest = scenario.evidence.fetch(spec.source, node)
        if not isinstance(manifest, dict):
            raise ConfigurationError(f"evidence.manifest for {node} answered "
                                     f"{type(manifest).__name__}, not a mapping of fields")
        manifests[node] = {k: v for k, v in manifest.items() if k not in spec.ignore}
    scenario.check(checks.identical(manifests))


@pytest.mark.packages
@pytest.mark.http
def test_a_replicated_package_reaches_every_node(scenario):
    spec = scenario.evidence.require("replication")
    t = scenario.thresholds
    version = f"1.1.{uuid.uuid4().int % 10_000}"
    published_at = time.monotonic()
    scenario.evidence.act(spec.publish, scenario.nodes[0], version=version)
    waiting = list(scenario.nodes)
    deadline = published_at + 2 * t.replication_bound
    while waiting and time.monotonic() < deadline:
        read = scenario.evidence.observe(spec.version, VERSION, waiting,
                                         missing_ok=True)
        waiting = [n for n in waiting if str(read.get(n)) != version]
        time.sleep(POLL_S)
    if all(o.value is None for o in scenario.observations.of(VERSION)):
        # a version path no node ever answers is a wrong path, not a verdict
        raise ConfigurationError(f"evidence.replication.version never answered "
                                 f"{spec.version.json_path!r} on any node")
    scenario.check(scenario.judge.replicated(scenario.observations.of(VERSION), scenario.nodes,
                                             version, published_at))
