"""Topology validation: every mistake is one sentence naming the field."""

from pathlib import Path

import pytest

from harness.config import Property, load_topology, parse_topology
from harness.errors import HarnessError

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def minimal(**overrides):
    data = {"entry": {"http": "http://127.0.0.1:8080"},
            "nodes": [{"id": "a", "endpoints": {"http": "http://127.0.0.1:5555"}}]}
    data.update(overrides)
    return data


def test_example_topologies_load():
    external = load_topology(EXAMPLES / "topology-external.yaml")
    assert external.node_ids == ["is1", "is2"]
    assert external.tls.ca_file == EXAMPLES / "cluster-ca.pem"
    assert external.claims_property("C6") and not external.claims_property(Property.C13)
    reference = load_topology(EXAMPLES / "topology-reference.yaml")
    assert len(reference.nodes) == 3 and reference.identity.http.header == "X-Node-Id"


@pytest.mark.parametrize("data, words", [
    (minimal(nodez=[]), "field 'nodez' is not a topology field"),
    (minimal(entry=None) | {"entry": {"htp": "http://127.0.0.1:1"}}, "'entry.htp' is not a topology field"),
    ({"nodes": []}, "field 'nodes'"),
    (minimal(nodes=[{"id": "a", "endpoints": {"http": "ftp://127.0.0.1:21"}}]), "'nodes.0.endpoints'"),
    (minimal(nodes=[{"id": "a", "endpoints": {}}, {"id": "a", "endpoints": {}}]), "node ids must be unique"),
    (minimal(identity={"http": {"header": "X", "regex": "y"}}), "exactly one of header"),
    (minimal(identity={"ftp": {"greeting_regex": "("}}), "does not compile"),
    (minimal(claims=["C99"]), "'claims.0'"),
    (minimal(entry={"http": "http://127.0.0.1:notaport"}), "invalid port"),
])
def test_a_wrong_field_is_named(data, words):
    with pytest.raises(HarnessError) as err:
        parse_topology(data, source="t.yaml")
    assert words in str(err.value)
    assert "\n" not in str(err.value)


def test_addresses_outside_loopback_need_the_opt_in():
    data = minimal(entry={"http": "http://10.1.2.3:8080"})
    with pytest.raises(HarnessError, match="'10.1.2.3'.*--allow-remote-targets"):
        parse_topology(data)
    assert parse_topology(data, allow_remote=True).entry.http == "http://10.1.2.3:8080"


def test_missing_file_and_bad_yaml(tmp_path):
    with pytest.raises(HarnessError, match="does not exist"):
        load_topology(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("nodes: [\n")
    with pytest.raises(HarnessError, match="not valid YAML"):
        load_topology(bad)


def test_missing_ca_file_is_named(tmp_path):
    path = tmp_path / "t.yaml"
    path.write_text("entry: {http: 'http://127.0.0.1:1'}\nnodes: [{id: a, endpoints: {}}]\n"
                    "tls: {ca_file: missing.pem}\n")
    with pytest.raises(HarnessError, match="tls.ca_file"):
        load_topology(path)
