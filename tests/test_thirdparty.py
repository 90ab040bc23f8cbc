"""The harness on a cluster it did not build: stock Debian servers (nginx, lighttpd, proftpd,
postfix's smtp-sink) started by tests/thirdparty/cluster.sh, described by
examples/topology-thirdparty.yaml, run as a user runs it (`harness probe`, `pytest scenarios/
--topology`). The sound configuration reaches a verdict on every property it claims; each
broken configuration fails on exactly the property it breaks; the FTP password, given only
through the environment, is never written anywhere.
"""

import gzip
import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from harness.cluster.external import ExternalCluster
from harness.config import load_topology
from harness.errors import HarnessError

pytestmark = [pytest.mark.cluster, pytest.mark.host_wide]  # fixed addresses 127.11.x.y; kernel faults on lo
ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "tests" / "thirdparty" / "cluster.sh"
TOPOLOGY = ROOT / "examples" / "topology-thirdparty.yaml"
PASSWORD = f"pw-{secrets.token_hex(8)}"
ENV = {**os.environ, "THIRDPARTY_FTP_PASSWORD": PASSWORD}


def cluster_sh(*args: str) -> None:
    subprocess.run([str(SCRIPT), *args], cwd=ROOT, env=ENV, check=True, timeout=60)


@pytest.fixture(scope="module", autouse=True)
def thirdparty():
    cluster_sh("down")  # a crashed earlier run's leftovers
    cluster_sh("up", "sound")
    try:
        yield
    finally:
        cluster_sh("down")


@pytest.fixture
def configuration():
    """Switch the balancer to a configuration for one test; back to sound afterwards."""
    yield lambda variant: cluster_sh("up", variant)
    cluster_sh("up", "sound")


def harness(*args: str, env=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "harness.cli", *args], cwd=ROOT, env=env or ENV,
                          capture_output=True, text=True, timeout=120)


def scenarios(results: Path, topology: Path, *args: str, env=None) -> tuple[int, list[dict], str]:
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "scenarios/", "--topology", str(topology), "-q",
         "-p", "no:cacheprovider", f"--alluredir={results}", f"--basetemp={results}-runs", *args],
        cwd=ROOT, env=env or ENV, capture_output=True, text=True, timeout=900)
    outcomes = [json.loads(p.read_text()) for p in results.glob("*-result.json")]
    return done.returncode, outcomes, done.stdout + done.stderr


def message(outcome: dict) -> str:
    return outcome.get("statusDetails", {}).get("message", "")


def variant_topology(tmp_path: Path, **changes) -> Path:
    """The example topology with `changes` (dotted by `__`), written elsewhere: its control
    commands, relative to the example's folder, made absolute."""
    data = yaml.safe_load(TOPOLOGY.read_text())
    for node in data["nodes"]:
        node["control"] = {action: command.replace("../tests/thirdparty/cluster.sh", str(SCRIPT))
                           for action, command in node["control"].items()}
    for dotted, value in changes.items():
        *parents, last = dotted.split("__")
        node = data
        for p in parents:
            node = node.setdefault(p, {})
        node[last] = value
    path = tmp_path / "topology.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_probe_is_clean_and_names_every_node():
    done = harness("probe", "--topology", str(TOPOLOGY))
    assert done.returncode == 0, done.stderr
    for node in ("node1", "node2", "node3"):
        assert f"{node}        ftp      yes     {node}" in done.stdout
    assert "TLS verified" in done.stdout and "login as 'harness' accepted" in done.stdout
    assert PASSWORD not in done.stdout + done.stderr


def test_the_sound_configuration_reaches_a_verdict_on_every_claimed_property(tmp_path):
    code, outcomes, output = scenarios(tmp_path / "results", TOPOLOGY)
    by_status: dict[str, list[str]] = {}
    for o in outcomes:
        by_status.setdefault(o["status"], []).append(o["name"])
    failed = {o["name"]: message(o)[:500] for o in outcomes if o["status"] not in ("passed", "skipped")}
    assert code == 0 and not failed, "\n".join([*(f"{n}: {m}" for n, m in failed.items()), output[-3000:]])
    # C1 x2, C2/C3 kill, pause and cut, C4 timeout, reset and bandwidth, C5-C7, C11: the
    # network faults by kernel rules on the nodes' loopback endpoints (no Toxiproxy here)
    assert len(by_status["passed"]) >= 15, by_status
    skips = [message(o) for o in outcomes if o["status"] == "skipped"]
    # partitions need the nodes' own namespaces; its operator has no maintenance switch
    assert all("does not claim" in s or "needs `evidence." in s or "no netem" in s
               or "needs Toxiproxy" in s or ".control.ssh`" in s or ".control.unavailable`" in s
               for s in skips), skips
    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert written and not any(PASSWORD.encode() in p.read_bytes() for p in written)
    assert PASSWORD not in output


def test_properties_without_their_evidence_are_skipped_naming_the_field(tmp_path):
    topology = variant_topology(tmp_path, claims=["C8", "C9", "C10", "C12", "C13", "C14"])
    code, outcomes, output = scenarios(tmp_path / "results", topology)
    assert code == 0 and outcomes, output[-2000:]
    reasons = {o["name"]: message(o) for o in outcomes}
    assert all(o["status"] == "skipped" for o in outcomes), reasons
    assert all("does not claim" in r or "needs `evidence." in r for r in reasons.values()), reasons
    assert sum("needs `evidence." in r for r in reasons.values()) == 11  # C8-C10, C12-C14


@pytest.mark.parametrize("variant, markers, props", [
    ("skewed", "lb or no_redirect", {"C1"}),
    ("no_retry", "failover or no_redirect", {"C2", "C3"}),
    ("ftp_fronted", "lb or no_redirect", {"C6"}),
    ("manifest_differs", "packages or no_redirect", {"C11"}),
    ("mail_twice", "packages or no_redirect", {"C7"}),
])
def test_a_broken_configuration_fails_on_exactly_its_property(tmp_path, configuration, variant,
                                                              markers, props):
    configuration(variant)
    topology = TOPOLOGY if variant != "ftp_fronted" else \
        variant_topology(tmp_path, entry__ftp="ftp://127.11.0.1:2121")
    code, outcomes, _ = scenarios(tmp_path / "results", topology, "-m", markers)
    failed = [o for o in outcomes if o["status"] != "passed" and o["status"] != "skipped"]
    assert code == 1 and failed
    assert all(o["status"] == "failed" and "ContractViolation" in message(o) for o in failed), \
        [message(o)[:300] for o in failed]
    flagged = {p for o in failed for p in props if f"{p} " in message(o)}
    assert flagged == props and all(any(f"{p} " in message(o) for p in props) for o in failed)


def test_control_written_as_operators_write_it_runs_and_reaches_verdicts(tmp_path):
    """The control commands in the forms operators write, one per node: a variable in the
    script's path (`$VAR`, `${VAR}`) behind `bash`; a `sudo`-style wrapper, `env` and `~`;
    a script beside the topology file behind `timeout`. The probe raises no doubt about them,
    and every node is killed, paused and restarted through its own form."""
    home, bin_dir, folder = tmp_path / "home", tmp_path / "bin", tmp_path / "cluster"
    for d in (home, bin_dir, folder):
        d.mkdir()
    (home / "cluster.sh").symlink_to(SCRIPT)
    sudo = bin_dir / "sudo"  # a stand-in that drops its options and runs the command
    sudo.write_text('#!/bin/sh\nwhile [ "${1#-}" != "$1" ]; do shift; done\nexec "$@"\n')
    ctl = folder / "ctl.sh"
    ctl.write_text('#!/bin/sh\nexec "$THIRDPARTY_HOME/cluster.sh" "$@"\n')
    for script in (sudo, ctl):
        script.chmod(0o755)
    forms = {"node1": {"kill": "bash $THIRDPARTY_HOME/cluster.sh kill {node}",
                       "pause": "bash ${THIRDPARTY_HOME}/cluster.sh pause {node}",
                       "resume": "bash $THIRDPARTY_HOME/cluster.sh resume {node}",
                       "restart": "bash ${THIRDPARTY_HOME}/cluster.sh restart {node}"},
             "node2": {a: f"sudo -n env MODE=hard ~/cluster.sh {a} {{node}}"
                       for a in ("kill", "pause", "resume", "restart")},
             "node3": {a: f"timeout 30 ./ctl.sh {a} {{node}}" for a in ("kill", "pause", "resume", "restart")}}
    data = yaml.safe_load(TOPOLOGY.read_text())
    for node in data["nodes"]:
        node["control"] = forms[node["id"]]
    topology = folder / "topology.yaml"
    topology.write_text(yaml.safe_dump(data))
    env = {**ENV, "THIRDPARTY_HOME": str(SCRIPT.parent), "HOME": str(home),
           "PATH": f"{bin_dir}:{os.environ['PATH']}"}
    probe = harness("probe", "--topology", str(topology), env=env)
    assert probe.returncode == 0 and "may not run here" not in probe.stderr, probe.stderr
    code, outcomes, output = scenarios(tmp_path / "results", topology, "-m", "failover and http",
                                       "-k", "kill or pause", "--victim", "all", env=env)
    assert code == 0 and len(outcomes) == 6, output[-3000:]
    assert all(o["status"] == "passed" for o in outcomes), [message(o)[:300] for o in outcomes]


def test_init_writes_a_topology_of_the_stock_servers_that_probes_clean(tmp_path):
    """`harness init` from the cluster alone: identity by a word of the body, the greetings'
    regexes, the CA; the FTP user named, its password left in the environment."""
    out = tmp_path / "found.yaml"
    nodes = [a for i in (1, 2, 3) for a in ("--node", f"http://127.11.1.{i}:8080",
                                            "--node-https", f"https://127.11.1.{i}:8443")]
    init = harness("init", "--entry", "http://127.11.0.1:8080", "--entry-https",
                   "https://127.11.0.1:8443", *nodes, "--path", "/whoami.txt", "--ca-file",
                   "/tmp/harness-thirdparty/ca.pem", "--ftp-user", "harness",
                   "--ftp-password-env", "THIRDPARTY_FTP_PASSWORD", "--topology-out", str(out))
    assert init.returncode == 0, init.stderr
    text = out.read_text()
    assert 'regex: "served\\\\s+by\\\\s+(?P<node>' in text, text
    assert "FTP ready" in text and "ESMTP" in text and PASSWORD not in text
    probe = harness("probe", "--topology", str(out))
    assert probe.returncode == 0, probe.stderr
    for node in ("node1", "node2", "node3"):
        assert f"{node}        ftp      yes     {node}" in probe.stdout


def test_a_refused_login_is_a_configuration_error_in_one_sentence(tmp_path):
    env = {**ENV, "THIRDPARTY_FTP_PASSWORD": "wrong-password"}
    done = harness("probe", "--topology", str(TOPOLOGY), env=env)
    assert done.returncode == 2
    assert "node node1 answered FTP" in done.stderr and "login as 'harness' refused" in done.stderr
    code, _, output = scenarios(tmp_path / "results", TOPOLOGY, "-m", "ftp", env=env)
    assert code == 2 and "harness probe: node node1 answered FTP" in output
    assert "Traceback" not in output


def test_a_wrong_ca_is_named_not_reported_as_a_broken_contract(tmp_path):
    other = tmp_path / "other-ca.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1", "-subj", "/CN=other",
                    "-keyout", str(tmp_path / "k"), "-out", str(other)], check=True,
                   capture_output=True)
    topology = variant_topology(tmp_path, tls__ca_file=str(other))
    done = harness("probe", "--topology", str(topology))
    assert done.returncode == 2
    assert f"TLS verification of https://127.11.0.1:8443/whoami.txt failed against {other} " \
        "(unable to get local issuer certificate)" in done.stderr


def test_a_control_command_that_hangs_ends_in_one_sentence(tmp_path, monkeypatch):
    data = yaml.safe_load(TOPOLOGY.read_text())
    data["nodes"][0]["control"] = {"kill": "echo stopping {node} at {host}; sleep 30 & wait",
                                   "timeout_s": 1}
    path = tmp_path / "t.yaml"
    path.write_text(yaml.safe_dump(data))
    monkeypatch.setenv("THIRDPARTY_FTP_PASSWORD", PASSWORD)
    cluster = ExternalCluster(load_topology(path))
    try:
        with pytest.raises(HarnessError) as err:
            cluster.kill("node1")
        assert str(err.value) == ("'kill' of node1 did not finish within 1 s "
                                  "(last output: stopping node1 at 127.11.1.1)")
        assert "stopping node1" in cluster.node_log("node1")
    finally:
        cluster.close()


def test_a_soak_of_stock_servers_passes_with_kernel_network_faults(tmp_path):
    """`harness soak --topology`: node faults by the topology's commands, network faults by
    kernel rules (no Toxiproxy here; latency needs netem, so the default nemesis leaves it
    out), every claimed property judged in some window, the password written nowhere."""
    report = tmp_path / "soak"
    done = subprocess.run([sys.executable, "-m", "harness.cli", "soak", "--topology", str(TOPOLOGY),
                           "--minutes", "1", "--seed", "28", "-o", str(report)],
                          cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=600)
    summary = json.loads((report / "soak-summary.json").read_text()) if report.exists() else {}
    assert done.returncode == 0, (summary.get("explanation"), done.stderr[-1500:])
    faults = [json.loads(line) for line in (report / "soak-faults.jsonl").read_text().splitlines()]
    assert {f["kind"] for f in faults} == {"kill", "pause", "cut"}  # seed 28's draw
    assert all(f["detail"].get("engine", "kernel") == "kernel" for f in faults)
    assert "latency" not in summary["plan"]["nemesis"]
    written = [p for p in report.rglob("*") if p.is_file()]
    assert not any(PASSWORD.encode() in (gzip.decompress(p.read_bytes()) if p.suffix == ".gz"
                                         else p.read_bytes()) for p in written)
    assert PASSWORD not in done.stdout + done.stderr
