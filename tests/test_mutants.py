"""The proof that every check can fail, and that none cries wolf: each mutant of the reference
cluster is run against the scenarios of the property it breaks, which must fail as "contract
violated" (never as a harness error); each sound variant passes the scenarios it is for; a
victim that carried no traffic makes the verdict inconclusive, never a pass; and the whole
suite passes on the sound cluster. The same holds through the external path: the reference
cluster written out by `harness up --topology-out` and judged from that topology alone.

Each run is `pytest scenarios/` in a subprocess, as a user runs it, read back through the
Allure results it writes.
"""

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import NamedTuple
from pathlib import Path

import pytest
import yaml

from harness.mutants import MUTANTS, Mutant

pytestmark = pytest.mark.cluster
ROOT = Path(__file__).resolve().parent.parent


class Run(NamedTuple):
    code: int
    outcomes: list[dict]
    output: str


def run_scenarios(results: Path, *args: str, backend: str = "local") -> Run:
    where = [] if "--topology" in args else ["--backend", backend]
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "scenarios/", *where, "-p", "no:cacheprovider",
         "-q", f"--alluredir={results}", *args],
        cwd=ROOT, capture_output=True, text=True, timeout=900)
    outcomes = [json.loads(p.read_text()) for p in results.glob("*-result.json")]
    return Run(done.returncode, outcomes, done.stdout + done.stderr)


@contextmanager
def reference_as_external(directory: Path, mutant: str | None = None) -> Iterator[Path]:
    """`harness up --topology-out`: the reference cluster, described as an external one."""
    topology = directory / "reference.yaml"
    up = subprocess.Popen(
        [sys.executable, "-m", "harness.cli", "up", "--backend", "local", "--topology-out",
         str(topology), "--endpoints-file", str(directory / "endpoints.json"),
         *(["--mutant", mutant] if mutant else [])],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while not topology.exists() and up.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        assert topology.exists(), f"harness up wrote no topology: {up.stderr.read() if up.poll() else ''}"
        yield topology
    finally:
        up.terminate()
        up.wait(timeout=60)


def message(outcome: dict) -> str:
    return outcome.get("statusDetails", {}).get("message", "")


# On one machine's loopback no address tells the balancer's or a peer's packets from the
# rest: a partition needs nodes in namespaces of their own (the docker backend, hosts over
# SSH: tests/test_hosts.py, the zoo's hosts-ssh), and elsewhere is skipped saying so.
LOOPBACK_CANNOT = ("network namespaces of their own", "needs `nodes[node1].control.ssh`")


def not_passed(outcomes: list[dict]) -> dict[str, str]:
    """Every scenario that did not pass, but a partition skipped for the reason above."""
    return {o["name"]: message(o)[:200] for o in outcomes if o["status"] != "passed"
            and not (o["status"] == "skipped" and "partition" in o["name"]
                     and any(r in message(o) for r in LOOPBACK_CANNOT))}


def assert_caught(mutant: Mutant, run: Run) -> None:
    """The run failed, every non-passing scenario as a contract violation, naming the
    property; the terminal shows the verdict, not a traceback into the harness."""
    code, outcomes, output = run
    assert "CONTRACT VIOLATED" in output and "harness/verdict.py" not in output, output[-2000:]
    statuses = {o["name"]: o["status"] for o in outcomes}
    assert code == 1 and outcomes, f"{mutant.name}: pytest exit {code}"
    broken = [o["name"] for o in outcomes if o["status"] not in ("passed", "failed", "skipped")]
    assert not broken, f"{mutant.name} made scenarios error instead of fail: {broken}"
    violations = [o for o in outcomes if o["status"] == "failed" and "ContractViolation" in message(o)]
    assert any(f"{mutant.prop} " in message(o) for o in violations), statuses


BREAKING = [m for m in MUTANTS if not m.sound]


@pytest.mark.parametrize("mutant", BREAKING, ids=lambda m: m.name)
def test_the_mutant_is_caught_as_a_contract_violation(mutant, tmp_path):
    narrow = ["-k", mutant.keyword] if mutant.keyword else []
    assert_caught(mutant, run_scenarios(tmp_path, "--mutant", mutant.name, "-m", mutant.kills, *narrow))


@pytest.mark.parametrize("mutant", BREAKING, ids=lambda m: m.name)
def test_the_mutant_is_caught_the_same_way_through_the_external_path(mutant, tmp_path):
    """Up to the first failure: that the verdict reaches through a topology file is shown by
    one violation; every scenario of the property failing is the built-in path's test."""
    narrow = ["-k", mutant.keyword] if mutant.keyword else []
    with reference_as_external(tmp_path, mutant.name) as topology:
        assert_caught(mutant, run_scenarios(tmp_path / "results", "--topology", str(topology),
                                             "-m", mutant.kills, "--maxfail=1", *narrow))


def test_the_sound_cluster_passes_every_scenario_through_the_external_path(tmp_path):
    """(C13's searches but: the local backend's whole run has them, and the zoo's members
    judge C13 through topologies of their operators')"""
    with reference_as_external(tmp_path) as topology:
        code, outcomes, _ = run_scenarios(tmp_path / "results", "--topology", str(topology), "-m", "not scale")
    failed = not_passed(outcomes)
    assert code == 0 and not failed, failed
    assert len(outcomes) >= 29


@pytest.mark.parametrize("mutant", [None, "lb_no_redispatch"])
def test_a_store_cut_by_the_operators_commands_is_judged_as_a_proxy_cut_is(tmp_path, mutant):
    """C10's store cut described as a pair of commands (here: Toxiproxy's API through curl,
    as an operator might script it) instead of a Toxiproxy link: it passes on the sound
    cluster and fails where the balancer does not take the cut node out in time."""
    with reference_as_external(tmp_path, mutant) as topology:
        data = yaml.safe_load(topology.read_text())
        state = data["evidence"]["state"]
        del state["store_link"]
        switch = "curl -sf -X POST {api}/proxies/{{node}}-redis -d '{{\"enabled\": {on}}}'"
        state["store_cut"] = {side: {"command": switch.format(api=data["toxiproxy"], on=on)}
                              for side, on in (("make", "false"), ("undo", "true"))}
        by_commands = tmp_path / "by-commands.yaml"
        by_commands.write_text(yaml.safe_dump(data))
        code, outcomes, _ = run_scenarios(tmp_path / "results", "--topology", str(by_commands),
                                       "-m", "state", "-k", "cut_off")
    if mutant is None:
        assert code == 0 and [o["status"] for o in outcomes] == ["passed"], [message(o) for o in outcomes]
    else:
        assert code == 1 and len(outcomes) == 1
        assert "ContractViolation: C10 failover" in message(outcomes[0]), message(outcomes[0])


def test_a_slow_restart_that_flaps_while_starting_gets_a_rejoin_verdict(tmp_path):
    """A node like a user's Java server in a container: its restart takes 6 s, then it
    answers a moment, drops out for 2.5 s while it finishes starting (paused here), and comes
    back for good. At the defaults the load runs as long as that takes, and the split is
    judged from the moment the node is stably back: a pass, the flap a figure."""
    with reference_as_external(tmp_path) as topology:
        data = yaml.safe_load(topology.read_text())
        for node in data["nodes"]:
            control = node["control"]
            pause, resume = control["pause"], control["resume"]
            control["restart"] = (f"sleep 6 && {control['restart']} && "
                                  f"{{ (sleep 0.4 && {pause} && sleep 2.5 && {resume}) "
                                  ">/dev/null 2>&1 & }")
        slow = tmp_path / "slow-restart.yaml"
        slow.write_text(yaml.safe_dump(data))
        code, outcomes, output = run_scenarios(tmp_path / "results", "--topology", str(slow),
                                               "-m", "rejoin")
    assert code == 0 and [o["status"] for o in outcomes] == ["passed"], output[-3000:]
    figures = {p["name"]: p["value"] for p in outcomes[0]["parameters"]}
    assert figures["C5.flaps_while_starting"] == "1", figures


@pytest.mark.parametrize("mutant", [m for m in MUTANTS if m.sound], ids=lambda m: m.name)
def test_a_sound_variant_passes(mutant, tmp_path):
    code, outcomes, _ = run_scenarios(tmp_path, "--mutant", mutant.name, "-m", mutant.kills)
    failed = not_passed(outcomes)
    assert code == 0 and outcomes and not failed, failed


def test_a_victim_that_carried_no_traffic_is_inconclusive_never_a_pass(tmp_path):
    """The vacuous pass of old: the starved last node as a fixed victim."""
    code, outcomes, output = run_scenarios(tmp_path, "--mutant", "lb_starves_last_node", "--victim", "node3",
                                   "-m", "failover and http", "-k", "kill")
    assert code == 1 and outcomes
    assert all(o["status"] == "failed" and "Inconclusive" in message(o) for o in outcomes), \
        [message(o)[:300] for o in outcomes]
    assert "node3 served" in message(outcomes[0]) and "--victim busiest" in message(outcomes[0])
    assert "C2 failover: INCONCLUSIVE" in output and "Traceback" not in output


NETWORK_SCENARIOS = ("-k", "cut or network")
KERNEL_CANNOT = {"latency": "no netem", "slicer": "needs Toxiproxy", "limit_data": "needs Toxiproxy"}
# The embedded cluster's two backends, each with its network faults by the kernel engine
# (the local one's bandwidth limit is the loopback's root qdisc); Toxiproxy's faults on the
# sound reference cluster are the external path's run, where the mutants' are.
BACKENDS = [pytest.param("local", marks=pytest.mark.host_wide),
            pytest.param("docker", marks=pytest.mark.docker)]


def network_scenarios(outcomes: list[dict]) -> list[dict]:
    """The outcomes `NETWORK_SCENARIOS` selects: the cuts (C2/C3's, the store's) and C4."""
    return [o for o in outcomes if "cut" in o["name"] or o.get("fullName", "").startswith(
        "scenarios.test_network#")]


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_sound_cluster_passes_every_scenario(tmp_path, backend):
    """The whole suite, its network faults by kernel rules: the sound half of the kernel
    engine's test below, in the same run."""
    # C13's saturation searches, once: on the local backend (the zoo's members judge it too)
    scope = [] if backend == "local" else ["-m", "not scale"]
    code, outcomes, _ = run_scenarios(tmp_path, "--network-faults", "kernel", *scope, backend=backend)
    kernel = network_scenarios(outcomes)
    assert_kernel_verdicts(code, kernel, None)  # passed, or skipped saying what the kernel lacks
    failed = {name: why for name, why in not_passed(outcomes).items()
              if name not in {o["name"] for o in kernel}}
    assert code == 0 and not failed, failed
    if backend == "docker":  # containers are hosts of their own: the partitions ran
        assert sum("partition" in o["name"] and o["status"] == "passed" for o in outcomes) == 3
    assert len(outcomes) >= 29


def assert_kernel_verdicts(code: int, outcomes: list[dict], mutant: str | None) -> None:
    """Seven network scenarios ran on kernel rules (cut over HTTP and HTTPS, timeout, reset,
    bandwidth, packet loss, the store cut): all passed, or under the mutant every partition
    and the loss failed as a violation; the rest were skipped saying what the kernel lacks.
    (The bandwidth row is not required to catch `lb_no_redispatch`: its 2 s server timeout
    equals the fault's length, so a throttled answer may time out after the window;
    measured, the kernel's limit caught it in 3 of 4 runs, Toxiproxy's in none of 6.)"""
    ran = [o for o in outcomes if o["status"] != "skipped"]
    assert len(ran) == 7 and all("kernel fault applied" in json.dumps(o) for o in ran), \
        {o["name"]: o["status"] for o in outcomes}
    for o in outcomes:
        if o["status"] == "skipped":
            toxic = o["name"].split("[")[-1].rstrip("]")
            assert KERNEL_CANNOT[toxic] in message(o), message(o)
    if mutant is None:
        assert code == 0 and all(o["status"] == "passed" for o in ran), [message(o)[:200] for o in ran]
    else:
        partitions = [o for o in ran if "bandwidth" not in o["name"]]
        assert code == 1 and all(o["status"] == "failed" and "ContractViolation" in message(o)
                                 for o in partitions), {o["name"]: message(o)[:120] for o in ran}


@pytest.mark.parametrize("backend", BACKENDS)
def test_kernel_network_faults_catch_the_mutant(tmp_path, backend):
    """The broken half; the sound one is the whole suite's run on the same backend."""
    code, outcomes, _ = run_scenarios(tmp_path, "--network-faults", "kernel", *NETWORK_SCENARIOS,
                                      "--mutant", "lb_no_redispatch", backend=backend)
    assert_kernel_verdicts(code, outcomes, "lb_no_redispatch")


@pytest.mark.host_wide  # lo's root qdisc
@pytest.mark.parametrize("mutant", [None, "lb_no_redispatch"])
def test_an_external_cluster_without_toxiproxy_gets_kernel_network_faults(tmp_path, mutant):
    """The reference cluster as a topology that names no Toxiproxy server: `auto` takes the
    kernel engine, with rules on the nodes' loopback endpoints and store addresses."""
    with reference_as_external(tmp_path, mutant) as topology:
        data = yaml.safe_load(topology.read_text())
        del data["toxiproxy"]
        bare = tmp_path / "no-toxiproxy.yaml"
        bare.write_text(yaml.safe_dump(data))
        code, outcomes, _ = run_scenarios(tmp_path / "results", "--topology", str(bare), *NETWORK_SCENARIOS)
    assert_kernel_verdicts(code, outcomes, mutant)


def test_a_topology_with_no_control_no_evidence_and_no_engine_skips_and_never_errors(tmp_path):
    """Every scenario against the reference cluster described by its endpoints alone (no node
    control, no evidence, no Toxiproxy; network faults asked of Toxiproxy): what needs a field
    is skipped naming it, and no scenario ends as a harness error."""
    with reference_as_external(tmp_path) as topology:
        bare = yaml.safe_load(topology.read_text())
        for node in bare["nodes"]:
            node.pop("control", None)
        for field in ("evidence", "toxiproxy"):
            bare.pop(field, None)
        (tmp_path / "bare.yaml").write_text(yaml.safe_dump(bare))
        code, outcomes, output = run_scenarios(tmp_path / "results", "--topology", str(tmp_path / "bare.yaml"),
                                               "--network-faults", "toxiproxy")
    errors = {o["name"]: message(o)[:200] for o in outcomes
              if o["status"] == "broken" or (o["status"] == "failed" and "ContractViolation" not in message(o)
                                              and "Inconclusive" not in message(o))}
    assert not errors, errors
    skipped = [message(o) for o in outcomes if o["status"] == "skipped"]
    assert skipped and all("`" in m or "does not claim" in m or "has no" in m for m in skipped), skipped
    assert any(o["status"] == "passed" for o in outcomes), output[-2000:]
