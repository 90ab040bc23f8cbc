"""The whole contract, for minutes: load on every protocol while a seeded nemesis keeps
injecting faults; every fault window and quiet period judged, exactly-once at the end.

    pytest scenarios/ -m soak --soak-minutes 30 [--soak-seed S] [--keep-going]
"""

import pytest

from harness.soak.report import write_report
from harness.soak.run import Soak


@pytest.mark.soak
def test_the_contract_holds_through_a_soak(scenario, soak_plan, progress):
    if soak_plan is None:
        pytest.skip("the soak runs when asked: --soak-minutes M (and --soak-seed S to replay one)")
    scenario.report.parameter("seed", soak_plan.seed)
    progress(f"soak seed {soak_plan.seed} (replay with --soak-seed {soak_plan.seed})")
    result = Soak(scenario, soak_plan, progress).run()
    for name, path in write_report(result, scenario.directory / "soak-report").items():
        scenario.report.attach_file(name, path)
    scenario.check(result.verdict)
