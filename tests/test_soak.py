"""The soak: a seeded schedule that replays, a request log that streams to disk in rotated
segments and is read back whole, window checks that pass, fail and say what they did not
check, and soaks of the reference cluster, sound and broken, as a user runs them."""

import itertools
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harness import nemesis
from harness.history.timeline import FaultEvent, FaultKind
from harness.fault_kinds import DEFAULT_NEMESIS, NEMESES, NETWORK_FAULTS, WEB_LINKS
from harness.judge import Judge
from harness.thresholds import Thresholds
from harness.soak.run import reservoir
from harness.soak.windows import Window, expected_properties, fault_verdicts, soak_verdict
from harness.history.requests import RequestRecord
from harness.history.stream import LogStream, RotatingJsonlWriter, segment

ROOT = Path(__file__).resolve().parent.parent
NODES = ["node1", "node2", "node3"]

# -- the schedule ----------------------------------------------------------------------------

plans = st.fixed_dictionaries({
    "seed": st.integers(0, 2**31),
    "kinds": st.lists(st.sampled_from(NEMESES), min_size=1, max_size=4, unique=True).map(tuple),
    "nodes": st.integers(2, 5).map(lambda n: [f"n{i}" for i in range(n)]),
    "duration_s": st.floats(10, 3600),
    "fault_s": st.floats(0.5, 20),
    "quiet_s": st.floats(0, 30),
    "policy": st.sampled_from(nemesis.POLICIES),
})


@given(plans)
@settings(max_examples=200, deadline=None)
def test_a_seed_replays_the_same_schedule_within_the_soak(plan):
    faults = nemesis.schedule(**plan)
    assert faults == nemesis.schedule(**plan)
    for f in faults:
        assert f.kind in plan["kinds"] and f.node in plan["nodes"]
        assert f.until + plan["quiet_s"] <= plan["duration_s"] + 1e-6
        assert (f.link in WEB_LINKS) == (f.kind in NETWORK_FAULTS)
    assert [f.at for f in faults] == sorted(f.at for f in faults)


@given(plans)
@settings(max_examples=200, deadline=None)
def test_serial_faults_never_overlap_and_overlapping_ones_leave_a_node_serving(plan):
    faults = nemesis.schedule(**plan)
    if plan["policy"] == "serial":
        for a, b in itertools.pairwise(faults):
            assert b.at >= a.until + plan["quiet_s"] - 0.11  # offsets are rounded to 0.1 s
        return
    for f in faults:
        busy = [g for g in faults if g is not f and g.at <= f.at < g.until + plan["quiet_s"]]
        assert f.node not in {g.node for g in busy}
        assert len({g.node for g in busy} | {f.node}) < len(plan["nodes"])


def test_different_seeds_draw_different_schedules():
    args = {"kinds": DEFAULT_NEMESIS, "nodes": NODES, "duration_s": 600, "fault_s": 4, "quiet_s": 8}
    assert nemesis.schedule(1, **args) != nemesis.schedule(2, **args)


# -- the streamed log ------------------------------------------------------------------------

def _record(i: int) -> RequestRecord:
    return RequestRecord("http", "whoami", "entry", "u", time.time(), float(i), float(i) + 0.001,
                         True, 200, "node1", key=f"k{i}")


def test_a_rotated_log_is_read_while_written_each_record_once_and_again_from_disk(tmp_path):
    stem = tmp_path / "load-0"
    writer = RotatingJsonlWriter(stem, rotate_bytes=20_000)
    read: list[RequestRecord] = []
    stream = LogStream(stem)
    done = threading.Event()

    def follow() -> None:
        while not done.is_set():
            read.extend(stream.read_new(max_bytes=4096))
            time.sleep(0.001)

    reader = threading.Thread(target=follow)
    reader.start()
    for i in range(5000):
        writer(_record(i))
    writer.close()
    time.sleep(0.05)
    done.set()
    reader.join()
    while batch := stream.read_new():
        read.extend(batch)
    assert [r.key for r in read] == [f"k{i}" for i in range(5000)]
    assert segment(stem, 1, compressed=True).exists() and not segment(stem, 1).exists()
    assert writer.index > 10 and stream.bytes_on_disk() < 5000 * 150 / 2  # compressed
    assert [r.key for r in LogStream(stem).records()] == [f"k{i}" for i in range(5000)]


def test_a_half_written_line_waits_for_its_end(tmp_path):
    stem = tmp_path / "load-0"
    line = _record(1).to_json()
    with segment(stem, 1).open("w") as f:
        f.write(line[:20])
        f.flush()
        stream = LogStream(stem)
        assert stream.read_new() == []
        f.write(line[20:] + "\n")
    assert [r.key for r in stream.read_new()] == ["k1"]


@given(st.integers(0, 200), st.integers(1, 30), st.integers(0, 9))
def test_the_reservoir_keeps_k_of_the_stream(n, k, seed):
    items = [_record(i) for i in range(n)]
    kept = reservoir(iter(items), k, seed)
    assert len(kept) == min(n, k) and len({r.key for r in kept}) == len(kept)
    assert [r.key for r in kept] == [r.key for r in reservoir(iter(items), k, seed)]


# -- window checks (pure) --------------------------------------------------------------------

def _fault(kind: str, target: str, start: float = 10.0, end: float = 13.0) -> FaultEvent:
    node, _, link = target.partition("/")
    return FaultEvent(FaultKind(kind), node, link or None, 0.0, start, 0.0, end,
                      applied_mono=start + 0.05, healing_mono=end - 0.5)


def _traffic(fault: FaultEvent, failing: bool = False, ftp_to_victim: bool = True) -> list[RequestRecord]:
    """Entry traffic over 0-30 s served by every node but the victim while it is down; FTP
    sessions to each node once a second (the victim's error while it is down)."""
    victim = fault.node
    records = []
    for i in range(3000):
        t = i / 100
        down = fault.start_mono <= t <= fault.end_mono
        node = NODES[i % 3]
        if down and node == victim:
            node = NODES[(i + 1) % 3]
        ok = not (failing and down and i % 5 == 0)
        records.append(RequestRecord("http", "echo", "entry", "u", 0, t, t + 0.005, ok,
                                     200 if ok else None, node if ok else None))
    for second in range(30):
        for node in NODES:
            down = node == victim and fault.start_mono <= second <= fault.end_mono
            if down and not ftp_to_victim:
                continue
            records.append(RequestRecord("ftp", "upload", node, "u", 0, second + 0.3, second + 0.35,
                                         not down, None, None if down else node))
    return records


def test_a_node_fault_window_passes_when_the_cluster_fails_over_and_fails_when_it_drops():
    t = Judge(Thresholds())
    kill = _fault("kill", "node2")
    good = fault_verdicts(kill, _traffic(kill), NODES, t, "request")
    assert {v.prop: v.outcome for v in good} == {"C2": "passed", "C5": "passed", "C6": "passed"}
    bad = fault_verdicts(kill, _traffic(kill, failing=True), NODES, t, "request")
    assert {v.prop: v.outcome for v in bad}["C2"] == "violated"


def test_a_cut_link_is_failover_of_its_protocol_and_other_network_faults_are_c4():
    t = Judge(Thresholds())
    cut = _fault("cut", "node2/http")
    assert [v.prop for v in fault_verdicts(cut, _traffic(cut), NODES, t, "request")] == ["C2"]
    slow = _fault("latency", "node2/http")
    assert [v.prop for v in fault_verdicts(slow, _traffic(slow), NODES, t, "request")] == ["C4"]
    assert expected_properties([cut], {"http"}, orders=False) == {"C1"}
    assert expected_properties([cut, slow], {"http"}, orders=True) == {"C1", "C4", "C14"}


def test_a_fault_too_short_for_ftp_leaves_c6_unchecked_and_the_soak_needs_one_window_that_judged_it():
    t = Judge(Thresholds())
    restart = _fault("restart", "node1")
    verdicts = fault_verdicts(restart, _traffic(restart, ftp_to_victim=False), NODES, t, "request")
    assert "C6" not in {v.prop for v in verdicts}
    assert all(any("C6 FTP not redirected" in u for u in v.unchecked) for v in verdicts)
    window = Window(1, "restart node1", 9.0, 19.0, restart, verdicts)
    expected = expected_properties([restart], {"http", "ftp"}, orders=False)
    assert expected == {"C1", "C2", "C5", "C6"}
    verdict = soak_verdict([window], [], False, 7, expected)
    assert verdict.outcome == "inconclusive" and "no window judged C1, C6" in verdict.explanation


def test_the_soak_verdict_names_its_first_violating_window_and_the_seed():
    t = Judge(Thresholds())
    kill = _fault("kill", "node2")
    ok = Window(1, "kill node2", 9.0, 19.0, kill, fault_verdicts(kill, _traffic(kill), NODES, t, "request"))
    bad = Window(2, "kill node2", 9.0, 19.0, kill,
                 fault_verdicts(kill, _traffic(kill, failing=True), NODES, t, "request"))
    verdict = soak_verdict([ok, bad], [], True, 42)
    assert verdict.outcome == "violated" and verdict.prop == "C2"
    assert "window 2 (kill node2)" in verdict.explanation and "seed 42" in verdict.explanation
    assert "--keep-going" in verdict.explanation
    assert soak_verdict([], [], False, 42).outcome == "inconclusive"


# -- soaks of the reference cluster -----------------------------------------------------------

def soak(tmp_path: Path, *args: str, timeout: int = 600) -> tuple[subprocess.CompletedProcess[str], dict]:
    report = tmp_path / "report"
    done = subprocess.run([sys.executable, "-m", "harness.cli", "soak", "--backend", "local",
                           "-o", str(report), *args],
                          cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    summary = report / "soak-summary.json"
    return done, json.loads(summary.read_text()) if summary.exists() else {}


def test_soak_options_are_checked_before_anything_runs(tmp_path):
    done, _ = soak(tmp_path, "--nemesis", "kill,meteor")
    assert done.returncode == 2 and done.stderr.count("\n") == 1
    assert "--nemesis meteor: no such fault" in done.stderr
    dry = [subprocess.run([sys.executable, "-m", "harness.cli", "soak", "--dry-run", "--seed", "11",
                           "--minutes", "10"], cwd=ROOT, capture_output=True, text=True, timeout=60)
           for _ in range(2)]
    usage = subprocess.run([sys.executable, "-m", "pytest", "scenarios/", "-m", "soak", "--soak-minutes",
                            "1", "--soak-nemesis", "kill,meteor", "-p", "no:cacheprovider"],
                           cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert usage.returncode == 4 and "--soak-nemesis meteor: no such fault" in usage.stderr
    assert dry[0].returncode == 0 and dry[0].stdout == dry[1].stdout
    assert dry[0].stdout.startswith("seed 11") and len(dry[0].stdout.splitlines()) > 20


@pytest.mark.cluster
def test_a_soak_stops_at_the_first_window_a_balancer_without_redispatch_violates(tmp_path):
    done, summary = soak(tmp_path, "--minutes", "2", "--seed", "7", "--nemesis", "kill,restart",
                         "--mutant", "lb_no_redispatch")
    assert done.returncode == 1, done.stderr[-2000:]
    assert summary["verdict"] == "violated" and summary["stopped_early"]
    first = summary["explanation"]
    assert "failover" in first and "window" in first, first
    rows = (tmp_path / "report" / "soak-windows.csv").read_text().splitlines()
    assert len(rows) <= 4, rows  # header, at most a quiet window, then the first fault's
    assert any(p.name.startswith("window-") for p in (tmp_path / "report").iterdir())


@pytest.mark.cluster
def test_a_soak_with_an_order_service_that_is_not_idempotent_fails_at_the_end(tmp_path):
    done, summary = soak(tmp_path, "--minutes", "0.5", "--seed", "3", "--nemesis", "kill",
                         "--mutant", "order_not_idempotent")
    assert done.returncode == 1, done.stderr[-2000:]
    assert summary["verdict"] == "violated" and not summary["stopped_early"]
    assert summary["windows"].get("violated", 0) == 0, summary
    assert any(c.startswith("C14 exactly once") and "more than once" in c for c in summary["end_checks"])


@pytest.mark.cluster
def test_a_soak_of_the_sound_cluster_passes_replays_its_seed_and_leaves_nothing(tmp_path):
    """Through the pytest entry, as `pytest scenarios/ -m soak --soak-minutes M` runs it."""
    results = tmp_path / "allure"
    runs = tmp_path / "runs"  # its own state root: a parallel worker's run holds a slot elsewhere
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "scenarios/", "-m", "soak", "--backend", "local",
         "--soak-minutes", "1", "--soak-seed", "27", "-p", "no:cacheprovider", "-q",
         f"--alluredir={results}", "--basetemp", str(tmp_path / "base")],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
        env={**os.environ, "HARNESS_STATE_DIR": str(runs)})
    assert done.returncode == 0, done.stdout[-3000:]
    assert "soak seed 27" in done.stdout and "windows judged" in done.stdout  # progress
    [result] = [json.loads(p.read_text()) for p in results.glob("*-result.json")]
    names = {a["name"] for a in result.get("attachments", [])}
    assert {"timeline", "windows", "schedule", "summary"} <= names, names
    timeline = next(results / a["source"] for a in result["attachments"] if a["name"] == "fault timeline")
    injected = [(e["kind"], e["node"], e["link"]) for e in map(json.loads, timeline.read_text().splitlines())]
    planned = [(f.kind, f.node, f.link)
               for f in nemesis.schedule(27, DEFAULT_NEMESIS, NODES, 60, 4.0, 8.0)]
    assert injected == planned  # so two runs with one seed inject the same faults
    assert not list((tmp_path / "base").rglob("load-*.jsonl*"))  # the streamed logs are gone
    slots = list(runs.glob("slot-*"))
    assert slots and all(sorted(p.name for p in slot.iterdir()) in ([], ["lock"]) for slot in slots)
