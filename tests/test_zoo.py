"""The zoo in the suite: of each member, the configurations its `member.yaml` lists under
`test` (one sound, one broken), each on the scenarios it is about, judged as `make zoo`
judges the whole table; and the table's own reading of outcomes, on made-up results."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from zoo.table import ROOT, Configuration, Row, judge, members, outcome_of, rows_of, run

MEMBERS = members()
# A member listens on fixed addresses of its own: its configurations run one after another,
# beside everything else (its network faults go through Toxiproxy or a container's namespace).
SUBSET = [pytest.param(m, c, id=f"{m.name}-{c}", marks=pytest.mark.xdist_group(f"zoo-{m.name}"))
          for m in MEMBERS for c in m.test]


@pytest.mark.cluster
@pytest.mark.parametrize(("member", "configuration"), SUBSET)
def test_the_zoo_member_is_judged_as_its_notes_say(member, configuration, tmp_path):
    config = member.configurations[configuration]
    rows = run(member, config, tmp_path, scope=config.scope)
    verdict = judge(member.name, config, rows)
    assert verdict.ok, (verdict.says, [(r.scenario, r.outcome, r.reason[:160]) for r in rows])


def test_every_member_has_a_sound_and_a_broken_configuration_in_the_suite():
    assert MEMBERS
    for m in MEMBERS:
        if m.tested_by:
            assert not m.test and (ROOT / m.tested_by).is_file(), m.name
            continue
        tested = [m.configurations[c] for c in m.test]
        assert any(c.sound for c in tested) and any(not c.sound for c in tested), m.name
        assert all(c.breaks for c in m.configurations.values() if not c.sound), m.name


def result(status: str, message: str = "") -> dict:
    return {"name": "s", "status": status, "statusDetails": {"message": message}}


def test_outcomes_are_read_from_the_exception_the_verdict_raised():
    assert outcome_of(result("passed")) == ("passed", "")
    assert outcome_of(result("failed", "harness.errors.ContractViolation: C2 failover: 3 lost")) == \
        ("violated", "C2 failover: 3 lost")
    assert outcome_of(result("failed", "Inconclusive: C2 failover: node3 served 0"))[0] == "inconclusive"
    assert outcome_of(result("skipped", "Skipped: the topology does not claim C9")) == \
        ("skipped", "the topology does not claim C9")
    assert outcome_of(result("broken", "KeyError: 'x'")) == ("harness error", "KeyError: 'x'")


def test_a_run_that_stopped_before_any_scenario_is_one_row_saying_why():
    [row] = rows_of("m", "sound", 2, [], "noise\nharness probe: node node1 answered FTP ... refused\n")
    assert (row.outcome, row.reason) == ("configuration error", "harness probe: node node1 answered FTP ... refused")


OUTCOMES = st.sampled_from(["passed", "violated", "inconclusive", "configuration error",
                            "harness error", "skipped"])
PROPS = st.sampled_from(["C1", "C2", "C3", "C5"])
ROWS = st.lists(st.builds(lambda o, ps: Row("m", "c", "s", o, " ".join(ps), tuple(ps)),
                          OUTCOMES, st.lists(PROPS, max_size=2)), max_size=8)


@given(ROWS)
def test_a_sound_configuration_is_clean_only_without_a_bad_outcome_and_with_a_pass(rows):
    ok = judge("m", Configuration("sound", "lb"), rows).ok
    assert ok == (any(r.outcome == "passed" for r in rows)
                  and not any(r.outcome in ("violated", "configuration error", "harness error")
                              for r in rows))


@given(ROWS, st.lists(PROPS, min_size=1, max_size=2, unique=True))
def test_a_broken_configuration_is_caught_only_on_every_property_it_names(rows, must_fail):
    ok = judge("m", Configuration("broken", "lb", tuple(must_fail), "x"), rows).ok
    caught = {p for r in rows if r.outcome == "violated" for p in r.properties}
    assert ok == (set(must_fail) <= caught and not any(r.outcome == "harness error" for r in rows))
