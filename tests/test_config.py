"""Topology validation: every mistake is one sentence naming the field."""

from pathlib import Path

import pytest

from harness.commands import render, run
from harness.config import NodeControl, NodeSpec, Property, load_topology, parse_topology
from harness.errors import HarnessError
from harness.evidence import Evidence, Source
from harness.model import within
from harness.secrets import secret

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def minimal(**overrides):
    data = {"entry": {"http": "http://127.0.0.1:8080"},
            "nodes": [{"id": "a", "endpoints": {"http": "http://127.0.0.1:5555"}}]}
    data.update(overrides)
    return data


def test_every_evidence_source_knows_its_field_and_its_errors_name_it(tmp_path):
    """Stamped when the topology is validated: a scenario passes a source alone, and what
    goes wrong reading it names the field the user wrote."""
    external = load_topology(EXAMPLES / "topology-external.yaml")
    sources = list(within(external, Source))
    assert sources and all(s.field.startswith(("evidence.", "safety.")) for s in sources)
    assert external.evidence.admin.undo[0].field == "evidence.admin.undo[0]"
    (tmp_path / "manifest.txt").write_text("not JSON")
    topology = parse_topology(minimal(evidence={"manifest": {"source": {
        "files": "manifest.txt", "json_path": "packages"}}}), source="t")
    reader = Evidence(topology.evidence, None, lambda node: {"node": node}, tmp_path, cwd=tmp_path)
    with pytest.raises(HarnessError, match=r"^evidence\.manifest\.source for a did not answer JSON"):
        reader.fetch(topology.evidence.manifest.source, "a")


def test_example_topologies_load():
    external = load_topology(EXAMPLES / "topology-external.yaml")
    assert external.node_ids == ["is1", "is2"]
    assert external.tls.ca_file == EXAMPLES / "cluster-ca.pem"
    assert external.claims_property("C6") and external.claims_property(Property.C13)
    assert external.nodes[1].control.ssh is not None and len(external.load.workers) == 2
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
    (minimal(entry={"ftp": "ftp://127.0.0.1:21/inbox"}), "give it in ftp.directory"),
    (minimal(entry={"http": "http://127.0.0.1:80/invoke/x?y=1"}), "give it in http.request.path"),
    (minimal(http={"auth": {"user": "u"}}), "needs both user and password_env"),
    (minimal(http={"auth": {"bearer_token_env": "T", "headers_env": {"X-Key": "K"}}}), "give one of"),
    (minimal(http={"auth": {"bearer_token_env": "not a name"}}), "'http.auth.bearer_token_env'"),
    (minimal(smtp={"user": "u"}), "SMTP AUTH needs both"),
    (minimal(tls={"client_key": "k.pem"}), "client_key needs client_cert"),
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


def test_credentials_in_a_url_are_refused_without_repeating_them():
    data = minimal(nodes=[{"id": "a", "endpoints": {"ftp": "ftp://user:hunter2@127.0.0.1:21"}}])
    with pytest.raises(HarnessError) as err:
        parse_topology(data, source="t.yaml")
    assert "carries credentials in the URL; give them in ftp.user and ftp.password_env" in str(err.value)
    assert "hunter2" not in str(err.value)


def test_a_topology_that_is_not_utf8_is_one_sentence(tmp_path):
    path = tmp_path / "t.yaml"
    path.write_bytes("name: caf\xe9\n".encode("latin-1"))
    with pytest.raises(HarnessError, match=r"is not UTF-8 text \(byte 0xe9 at offset 9\)"):
        load_topology(path)


def test_node_control_commands_from_the_docker_form():
    control = NodeControl(docker="shop-{node}", restart="systemctl restart is-{node}")
    assert control.command("kill") == "docker kill --signal KILL shop-{node}"
    assert control.command("resume") == "docker unpause shop-{node}"
    assert control.command("restart") == "systemctl restart is-{node}"  # given beside docker
    node = NodeSpec(id="n1", endpoints={"http": "http://127.0.0.7:5555"}, control=control)
    assert render(control.command("pause"), node.placeholders()) == "docker pause shop-n1"
    assert render("ssh {host} kill {node}", node.placeholders()) == "ssh 127.0.0.7 kill n1"
    assert NodeControl().command("kill") is None


def test_a_command_that_echoes_a_secret_leaves_none_in_its_log_or_error(tmp_path, monkeypatch):
    monkeypatch.setenv("CMD_SECRET", "s3cr3t-value")
    secret("CMD_SECRET", "test")
    log = tmp_path / "control.log"
    assert run('echo "using $CMD_SECRET"', {}, log, 10, "'kill' of n1") == "using ***\n"
    with pytest.raises(HarnessError) as err:
        run('echo "denied for $CMD_SECRET"; exit 3', {}, log, 10, "'kill' of n1")
    assert str(err.value) == "'kill' of n1 failed with exit 3 (last output: denied for ***)"
    assert "s3cr3t-value" not in log.read_text()


def test_the_shipped_json_schema_is_the_models_and_the_examples_keep_it():
    import json
    import subprocess
    import sys

    from harness.config import SCHEMA_FILE, topology_schema

    assert json.loads(SCHEMA_FILE.read_text()) == topology_schema(), \
        "harness/topology.schema.json is stale: `harness schema > harness/topology.schema.json`"
    root = SCHEMA_FILE.parents[1]
    files = [*root.glob("examples/topology-*.yaml"), *root.glob("tests/zoo/*/topology.yaml")]
    done = subprocess.run([sys.executable, "-m", "check_jsonschema", "--schemafile", str(SCHEMA_FILE),
                           *map(str, files)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_example_names_every_field_and_is_a_valid_topology():
    import re
    import sys

    import yaml

    from harness.config import parse_topology

    root = Path(__file__).resolve().parents[1]
    sys.path.insert(0, str(root / "scripts"))
    from docs import field_names

    example = root / "examples" / "topology-external.yaml"
    text = example.read_text()
    parse_topology(yaml.safe_load(text), source=str(example))
    unnamed = {f"{model}.{name}" for model, names in field_names().items() for name in names
               if not re.search(rf"(?<![\w-]){re.escape(name)}:", text)}
    assert not unnamed, f"examples/topology-external.yaml does not name {sorted(unnamed)}"


def test_a_stop_condition_is_the_option_else_the_topologys_safety_field_else_the_default():
    from harness.config import Safety
    from harness.safety import StopConditions, stop_conditions

    team = Safety(min_healthy_nodes=2, stop_error_rate=0.2)
    assert stop_conditions({}, Safety()) == StopConditions()
    assert stop_conditions({"min_healthy_nodes": None}, team) == StopConditions(2, 0.2, 10.0)
    assert stop_conditions({"min_healthy_nodes": 3, "stop_health_seconds": 5.0}, team) == \
        StopConditions(3, 0.2, 5.0)
    with pytest.raises(HarnessError, match="^--stop-error-rate must be more than 0 and at most 1, not 1.5$"):
        stop_conditions({"stop_error_rate": 1.5}, team)
    with pytest.raises(HarnessError, match="safety.stop_error_rate"):
        parse_topology(minimal(safety={"stop_error_rate": 0}), source="t")
