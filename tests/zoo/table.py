"""The zoo's verdict table: every member (a cluster of stock servers built differently from
ours, one folder each) in every configuration, run through `pytest scenarios/` as a user runs
it, each scenario's outcome read back from the Allure results it writes.

    python tests/zoo/table.py [--member NAME ...] [--configuration NAME ...] [--out DIR]

writes DIR/table.md and DIR/table.json (default reports/zoo/) and exits 1 when a sound
configuration reached a violation, a configuration error or a harness error, or a broken one
was not caught on every property its notes name. A member's folder holds `member.yaml` (what
it is, how it starts and stops, its configurations: what each breaks and which properties
must then fail), its start script and the topology its operator would write.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import shlex
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

import yaml

ROOT = Path(__file__).resolve().parents[2]
ZOO = Path(__file__).resolve().parent
START_TIMEOUT_S = 600.0  # a member's first start on a machine may build its image (debootstrap)
RUN_TIMEOUT_S = 1200.0

Outcome = Literal["passed", "violated", "inconclusive", "configuration error", "harness error",
                  "skipped"]
BAD_FOR_SOUND: tuple[Outcome, ...] = ("violated", "configuration error", "harness error")


@dataclass(frozen=True)
class Configuration:
    name: str
    about: str
    """marker expression of the scenarios this configuration is about (what `make test` runs)"""
    must_fail: tuple[str, ...] = ()
    """the properties a broken configuration must be caught violating; none for a sound one"""
    breaks: str = ""
    keyword: str = ""
    """a `-k` expression narrowing `about` to the scenarios that show it, as a mutant's does"""
    options: tuple[str, ...] = ()
    """what its operator adds to every run of the scenarios (e.g. a saturation search's steps)"""
    inconclusive: tuple[tuple[str, str], ...] = ()
    """(property, words): a sound configuration's properties that must end inconclusive, each
    verdict saying those words (a cluster that outruns this machine's load generator is not
    judged on C13, and says so)"""

    @property
    def scope(self) -> list[str]:
        """The pytest arguments that select what this configuration is about."""
        return ["-m", self.about, *(["-k", self.keyword] if self.keyword else [])]

    @property
    def sound(self) -> bool:
        return not self.must_fail


@dataclass(frozen=True)
class Member:
    name: str
    folder: Path
    summary: str
    start: str
    """shell command run in the member's folder; `{configuration}` is the configuration's name"""
    stop: str
    topology: Path
    configurations: dict[str, Configuration]
    test: tuple[str, ...]
    """the configurations `make test` runs, on the scenarios each is about"""
    secrets: tuple[str, ...] = ()
    """environment variables the member reads its secrets from, made afresh for each run"""
    tested_by: str = ""
    """the test file that runs the member in `make test` instead of `test` (a target older
    than the zoo)"""
    init: tuple[str, ...] = ()
    """the arguments its operator gives `harness init` (a sound configuration's run starts by
    writing a topology with them and probing it, as a new user's first try does)"""
    environment: tuple[tuple[str, str], ...] = ()
    """variables its operator's shell has (a profile), for the start and stop commands and the
    topology's control commands, which name them (`$ZOO_TOMCAT_DIR/bin/...`)"""
    remote: bool = False
    """its addresses are not loopback ones (hosts of its own): `--allow-remote-targets` on
    every harness command, as its operator would type it"""

    @classmethod
    def load(cls, folder: Path) -> "Member":
        data = yaml.safe_load((folder / "member.yaml").read_text())
        configurations = {
            name: Configuration(name, spec["about"], tuple(spec.get("must_fail", ())),
                                " ".join(str(spec.get("breaks", "")).split()),
                                spec.get("keyword", ""), tuple(shlex.split(spec.get("options", ""))),
                                tuple((str(p), str(w)) for p, w in spec.get("inconclusive", {}).items()))
            for name, spec in data["configurations"].items()}
        unknown = set(data.get("test", ())) - set(configurations)
        if unknown or not any(c.sound for c in configurations.values()):
            raise ValueError(f"{folder}/member.yaml: needs a sound configuration, and `test` may "
                             f"name only its configurations (unknown: {sorted(unknown)})")
        return cls(folder.name, folder, " ".join(data["summary"].split()), data["start"],
                   data["stop"], (folder / data["topology"]).resolve(), configurations,
                   tuple(data.get("test", ())), tuple(data.get("secrets", ())),
                   data.get("tested_by", ""), tuple(shlex.split(data.get("init", ""))),
                   tuple((str(k), str(v)) for k, v in data.get("environment", {}).items()),
                   bool(data.get("remote", False)))

    @property
    def options(self) -> list[str]:
        """What every harness command the member gets is given besides its own arguments."""
        return ["--allow-remote-targets"] if self.remote else []


def members(root: Path = ZOO) -> list[Member]:
    return [Member.load(p.parent) for p in sorted(root.glob("*/member.yaml"))]


@dataclass(frozen=True)
class Row:
    member: str
    configuration: str
    scenario: str
    outcome: Outcome
    reason: str = ""
    properties: tuple[str, ...] = ()
    """the properties the verdict names (C1 ... C14)"""


PROPERTY = re.compile(r"\bC(?:1[0-4]|[1-9])\b")


def outcome_of(result: dict) -> tuple[Outcome, str]:
    """A scenario's outcome and its one-line reason, from its Allure result."""
    status = result.get("status")
    message = result.get("statusDetails", {}).get("message", "") or ""
    line = " ".join(message.split())[:240]
    if status == "passed":
        return "passed", ""
    if status == "skipped":
        return "skipped", line.removeprefix("Skipped: ")
    for marker, outcome in (("ContractViolation", "violated"), ("Inconclusive", "inconclusive"),
                            ("ConfigurationError", "configuration error")):
        if marker in message:
            return outcome, line.split(f"{marker}: ", 1)[-1]
    return "harness error", line


def rows_of(member: str, configuration: str, code: int, results: list[dict],
            output: str) -> list[Row]:
    """One row per scenario; a run that stopped before any scenario (a probe that found the
    topology wrong: exit 2) is one row saying why, never an empty table."""
    rows = []
    for result in sorted(results, key=lambda r: r.get("fullName", r.get("name", ""))):
        outcome, reason = outcome_of(result)
        rows.append(Row(member, configuration, result.get("name", "?"), outcome, reason,
                        tuple(dict.fromkeys(PROPERTY.findall(reason)))))
    if not rows:
        said = [line for line in output.splitlines() if line.startswith("harness")]
        outcome: Outcome = "configuration error" if code == 2 else "harness error"
        rows.append(Row(member, configuration, "(before any scenario)", outcome,
                        (said[-1] if said else output.strip()[-240:]) or f"pytest exit {code}"))
    return rows


@dataclass(frozen=True)
class Judgement:
    member: str
    configuration: str
    ok: bool
    says: str


def judge(member: str, configuration: Configuration, rows: list[Row]) -> Judgement:
    """A sound configuration reaches verdicts (at least one pass, or the inconclusive ones
    its notes expect, each saying what they name) and no violation, no configuration error,
    no harness error; a broken one is caught violating every property its notes name, and
    never ends in a harness error."""
    count = {o: sum(r.outcome == o for r in rows) for o in dict.fromkeys(r.outcome for r in rows)}
    tally = ", ".join(f"{n} {o}" for o, n in count.items())
    if configuration.sound:
        bad = [r for r in rows if r.outcome in BAD_FOR_SOUND]
        unsaid = [f"{p} inconclusive saying '{words}'" for p, words in configuration.inconclusive
                  if not any(r.outcome == "inconclusive" and p in r.properties and words in r.reason
                             for r in rows)]
        if bad or unsaid or not (count.get("passed") or configuration.inconclusive):
            first = bad[0] if bad else None
            why = f"{first.scenario}: {first.outcome}: {first.reason}" if first else \
                f"not {unsaid[0]}" if unsaid else "nothing passed"
            return Judgement(member, configuration.name, False, f"sound but {why} ({tally})")
        return Judgement(member, configuration.name, True, f"clean ({tally})")
    caught = {p for r in rows if r.outcome == "violated" for p in r.properties}
    missed = [p for p in configuration.must_fail if p not in caught]
    errors = [r for r in rows if r.outcome == "harness error"]
    if missed or errors:
        why = f"not caught on {', '.join(missed)}" if missed else f"{errors[0].scenario}: harness error"
        return Judgement(member, configuration.name, False, f"{why} ({tally})")
    return Judgement(member, configuration.name, True,
                     f"caught on {', '.join(configuration.must_fail)} ({tally})")


@contextmanager
def running(member: Member, configuration: str, env: dict[str, str], log: Path) -> Iterator[None]:
    """The member up in `configuration` for the block, and down after it, whatever happens.
    Its daemons inherit the start command's output: that goes to a file, never a pipe."""
    def shell(command: str) -> int:
        with log.open("a") as out:
            return subprocess.run(command, shell=True, cwd=member.folder, env=env, stdout=out,
                                  stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                  timeout=START_TIMEOUT_S).returncode
    try:
        code = shell(member.start.format(configuration=configuration))
        if code != 0:
            tail = " | ".join(log.read_text(errors="replace").strip().splitlines()[-3:])
            raise RuntimeError(f"{member.name}: `{member.start}` exited {code}: {tail}")
        yield
    finally:
        shell(member.stop)


def run(member: Member, configuration: Configuration, workdir: Path,
        scope: list[str] | None = None) -> list[Row]:
    """The member in one configuration through `pytest scenarios/` (all of them, or those
    `scope` selects), as rows."""
    env = member_env(member)
    results = workdir / "allure-results"
    first: list[Row] = []
    with running(member, configuration.name, env, workdir / "member.log"):
        if configuration.sound and member.init:
            first.append(first_try_row(member, configuration,
                                       init_then_probe(member, workdir / "init.yaml", env)))
        done = subprocess.run(
            [sys.executable, "-m", "pytest", "scenarios/", "--topology", str(member.topology), *member.options,
             *(scope or []), *configuration.options, "-q", "-p", "no:cacheprovider",
             f"--alluredir={results}", f"--basetemp={workdir / 'runs'}"],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=RUN_TIMEOUT_S,
            stdin=subprocess.DEVNULL)
    found = [json.loads(p.read_text()) for p in results.glob("*-result.json")]
    rows = first + rows_of(member.name, configuration.name, done.returncode, found,
                           done.stdout + done.stderr)
    hidden = [env[name] for name in member.secrets]
    return [Row(**{**asdict(r), "reason": _scrub(r.reason, hidden)}) for r in rows]


INIT_THEN_PROBE = "harness init, then harness probe"


@dataclass(frozen=True)
class FirstTry:
    """`harness init` with the member's arguments, then `harness probe` of the file as written."""

    seconds: tuple[float, ...]
    """from init's start to the end of each step run"""
    code: int
    said: str = ""
    """the last sentence of the step that failed"""


def init_then_probe(member: Member, out: Path, env: dict[str, str]) -> FirstTry:
    harness = [sys.executable, "-m", "harness.cli"]
    started, seconds = time.monotonic(), []
    for argv in ([*harness, "init", *member.init, *member.options, "--topology-out", str(out)],
                 [*harness, "probe", "--topology", str(out), *member.options]):
        done = subprocess.run(argv, cwd=member.folder, env=env, capture_output=True, text=True,
                              timeout=300, stdin=subprocess.DEVNULL)
        seconds.append(round(time.monotonic() - started, 1))
        if done.returncode != 0:
            said = (done.stderr.strip().splitlines() or [f"exit {done.returncode}"])[-1]
            return FirstTry(tuple(seconds), done.returncode, said[:240])
    return FirstTry(tuple(seconds), 0)


def first_try_row(member: Member, configuration: Configuration, tried: FirstTry) -> Row:
    """Passed with when each step ended, or the failed step's last sentence (exit 2: the file
    or the cluster is wrong, a configuration error; anything else, a harness error)."""
    if tried.code == 0:
        init_s, probe_s = tried.seconds
        return Row(member.name, configuration.name, INIT_THEN_PROBE, "passed",
                   f"init done after {init_s} s, probe after {probe_s} s")
    outcome: Outcome = "configuration error" if tried.code == 2 else "harness error"
    return Row(member.name, configuration.name, INIT_THEN_PROBE, outcome, tried.said,
               tuple(dict.fromkeys(PROPERTY.findall(tried.said))))


def member_env(member: Member) -> dict[str, str]:
    """The environment its operator's shell has: the member's variables, its secrets made up
    for this run (they never reach a table: `_scrub`)."""
    return {**os.environ, **dict(member.environment),
            **{name: f"zoo-{secrets.token_hex(8)}" for name in member.secrets}}


def _scrub(text: str, hidden: list[str]) -> str:
    for value in hidden:
        text = text.replace(value, "***")
    return text


def markdown(judgements: list[Judgement], rows: list[Row], members_: list[Member]) -> str:
    """The table people read: one line per configuration, then every scenario's outcome."""
    notes = {(m.name, c.name): c for m in members_ for c in m.configurations.values()}
    lines = ["# The zoo's verdict table", "",
             "| member | configuration | breaks | must fail | judged |",
             "|---|---|---|---|---|"]
    for j in judgements:
        c = notes[(j.member, j.configuration)]
        lines.append(f"| {j.member} | {j.configuration} | {c.breaks or 'nothing (sound)'} | "
                     f"{', '.join(c.must_fail) or '-'} | {'ok' if j.ok else '**NOT OK**'}: {j.says} |")
    lines += ["", "| member | configuration | scenario | outcome | reason |", "|---|---|---|---|---|"]
    for r in rows:
        reason = r.reason.replace("|", "\\|")
        lines.append(f"| {r.member} | {r.configuration} | {r.scenario} | {r.outcome} | {reason} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python tests/zoo/table.py", description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--member", action="append", help="only this member (repeatable)")
    parser.add_argument("--configuration", action="append", help="only this configuration (repeatable)")
    parser.add_argument("--out", type=Path, default=ROOT / "reports" / "zoo", help="where the table goes")
    args = parser.parse_args(argv)
    chosen = [m for m in members() if not args.member or m.name in args.member]
    if not chosen:
        parser.error(f"no zoo member is called {', '.join(args.member)}; "
                     f"the zoo has {', '.join(m.name for m in members())}")
    rows: list[Row] = []
    judgements: list[Judgement] = []
    started = time.monotonic()
    for member in chosen:
        for configuration in member.configurations.values():
            if args.configuration and configuration.name not in args.configuration:
                continue
            print(f"zoo: {member.name} / {configuration.name} ...", file=sys.stderr, flush=True)
            with tempfile.TemporaryDirectory(prefix=f"zoo-{member.name}-") as work:
                got = run(member, configuration, Path(work))
            rows += got
            judgements.append(judge(member.name, configuration, got))
            j = judgements[-1]
            print(f"zoo: {member.name} / {configuration.name}: {'ok' if j.ok else 'NOT OK'}: "
                  f"{j.says} ({time.monotonic() - started:.0f} s so far)", file=sys.stderr, flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "table.md").write_text(markdown(judgements, rows, chosen))
    (args.out / "table.json").write_text(json.dumps(
        {"judgements": [asdict(j) for j in judgements], "rows": [asdict(r) for r in rows]}, indent=1))
    print(f"zoo: wrote {args.out / 'table.md'} and table.json", file=sys.stderr)
    return 0 if all(j.ok for j in judgements) else 1


if __name__ == "__main__":
    sys.exit(main())
