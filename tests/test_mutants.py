"""The proof that every check can fail, and that none cries wolf: each mutant of the reference
cluster is run against the scenarios of the property it breaks, which must fail as "contract
violated" (never as a harness error); each sound variant passes the scenarios it is for; a
victim that carried no traffic makes the verdict inconclusive, never a pass; and the whole
suite passes on the sound cluster.

Each run is `pytest scenarios/` in a subprocess, as a user runs it, read back through the
Allure results it writes.
"""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from harness.mutants import MUTANTS

pytestmark = pytest.mark.cluster
ROOT = Path(__file__).resolve().parent.parent


def run_scenarios(results: Path, *args: str, backend: str = "local") -> tuple[int, list[dict]]:
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "scenarios/", "--backend", backend, "-p", "no:cacheprovider",
         "-q", f"--alluredir={results}", *args],
        cwd=ROOT, capture_output=True, text=True, timeout=900)
    outcomes = [json.loads(p.read_text()) for p in results.glob("*-result.json")]
    return done.returncode, outcomes


def message(outcome: dict) -> str:
    return outcome.get("statusDetails", {}).get("message", "")


@pytest.mark.parametrize("mutant", [m for m in MUTANTS if not m.sound], ids=lambda m: m.name)
def test_the_mutant_is_caught_as_a_contract_violation(mutant, tmp_path):
    narrow = ["-k", mutant.keyword] if mutant.keyword else []
    code, outcomes = run_scenarios(tmp_path, "--mutant", mutant.name, "-m", mutant.kills, *narrow)
    statuses = {o["name"]: o["status"] for o in outcomes}
    assert code == 1 and outcomes, f"{mutant.name}: pytest exit {code}"
    broken = [o["name"] for o in outcomes if o["status"] not in ("passed", "failed")]
    assert not broken, f"{mutant.name} made scenarios error instead of fail: {broken}"
    violations = [o for o in outcomes if o["status"] == "failed" and "ContractViolation" in message(o)]
    assert any(f"{mutant.prop} " in message(o) for o in violations), statuses


@pytest.mark.parametrize("mutant", [m for m in MUTANTS if m.sound], ids=lambda m: m.name)
def test_a_sound_variant_passes(mutant, tmp_path):
    code, outcomes = run_scenarios(tmp_path, "--mutant", mutant.name, "-m", mutant.kills)
    failed = {o["name"]: message(o)[:300] for o in outcomes if o["status"] != "passed"}
    assert code == 0 and outcomes and not failed, failed


def test_a_victim_that_carried_no_traffic_is_inconclusive_never_a_pass(tmp_path):
    """The vacuous pass of old: the starved last node as a fixed victim."""
    code, outcomes = run_scenarios(tmp_path, "--mutant", "lb_starves_last_node", "--victim", "node3",
                                   "-m", "failover and http", "-k", "kill")
    assert code == 1 and outcomes
    assert all(o["status"] == "failed" and "Inconclusive" in message(o) for o in outcomes), \
        [message(o)[:300] for o in outcomes]
    assert "node3 served" in message(outcomes[0]) and "--victim busiest" in message(outcomes[0])


@pytest.mark.parametrize("backend", ["local", pytest.param("docker", marks=pytest.mark.docker)])
def test_the_sound_cluster_passes_every_scenario(tmp_path, backend):
    code, outcomes = run_scenarios(tmp_path, backend=backend)
    failed = {o["name"]: o["statusDetails"].get("message", "")[:200]
              for o in outcomes if o["status"] != "passed"}
    assert code == 0 and not failed, failed
    assert len(outcomes) >= 29
