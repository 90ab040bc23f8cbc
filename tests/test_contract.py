"""`clusterproof run`'s exit code from its scenarios' endings: a configuration error beats a
violation beats a harness error beats inconclusive beats a pass, and nothing judged is never
a pass."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from harness.contract import exit_code

ENDINGS = st.lists(st.sampled_from(["passed", "violated", "inconclusive", "configuration error",
                                    "harness error", "skipped"]), max_size=12)


@given(ENDINGS)
def test_the_worst_ending_decides_and_nothing_judged_is_inconclusive(endings):
    code = exit_code(endings)
    for ending, expected in (("configuration error", 2), ("violated", 1), ("harness error", 4),
                             ("inconclusive", 3)):
        if ending in endings:
            assert code == expected
            return
    assert code == (0 if "passed" in endings else 3)


@pytest.mark.parametrize("pytest_code", [pytest.ExitCode.INTERRUPTED, pytest.ExitCode.USAGE_ERROR])
def test_a_session_pytest_stopped_or_refused_is_a_configuration_error(pytest_code):
    assert exit_code(["passed"], int(pytest_code)) == 2
