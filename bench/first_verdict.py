"""How long a new user waits for the first verdict on a cluster we did not build: from typing
`harness init` to the first scenario's verdict of `pytest scenarios/ --topology FILE`, on the
file init wrote, unedited (secrets through the environment aside), on each zoo member.

    .venv/bin/python bench/first_verdict.py [--member NAME ...] [--out reports/first-verdict.md]

The member is started first and not timed: the user's cluster is already running. Then, as
the user would type them: `harness init` with the member's arguments (its member.yaml), then
`harness probe` of the file, then `pytest scenarios/` on it, stopped (SIGINT: its teardown
runs) once the first scenario has a verdict (passed or failed, from its Allure result; a
skip is not a verdict). Figures are wall seconds on this machine, not asserted anywhere.
"""

from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from zoo.table import Member, init_then_probe, member_env, members, running  # noqa: E402

VERDICT_WITHIN_S = 600.0  # the run is stopped here if no scenario has reached a verdict


def first_verdict(member: Member, work: Path) -> dict[str, object]:
    """Seconds from init to each step's end, for one member started in its sound configuration."""
    env = member_env(member)
    topology, results = work / "my-cluster.yaml", work / "allure-results"
    with running(member, "sound", env, work / "member.log"):
        started = time.monotonic()
        tried = init_then_probe(member, topology, env)
        row: dict[str, object] = {"member": member.name,
                                  **dict(zip(("init", "probe"), tried.seconds))}
        if tried.code != 0:
            row["stopped"] = f"{('init', 'probe')[len(tried.seconds) - 1]}: {tried.said}"
            return row
        with (work / "pytest.log").open("w") as log:
            pytest = subprocess.Popen(
                [sys.executable, "-m", "pytest", "scenarios/", "--topology", str(topology), "-q",
                 "-p", "no:cacheprovider", f"--alluredir={results}", f"--basetemp={work / 'runs'}"],
                cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
            try:
                while pytest.poll() is None and time.monotonic() - started < VERDICT_WITHIN_S:
                    verdicts = [r for r in map(_read, results.glob("*-result.json"))
                                if r.get("status") in ("passed", "failed")]
                    if verdicts:
                        first = min(verdicts, key=lambda r: r.get("stop", 0))
                        row["first verdict"] = round(time.monotonic() - started, 1)
                        row["scenario"] = f"{first.get('name')}: {first.get('status')}"
                        break
                    time.sleep(0.5)
                else:
                    row["stopped"] = "no scenario reached a verdict"
            finally:
                if pytest.poll() is None:
                    pytest.send_signal(signal.SIGINT)
                    try:
                        pytest.wait(120)
                    except subprocess.TimeoutExpired:
                        pytest.kill()
                        pytest.wait()
    return row


def _read(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}  # being written


def markdown(rows: list[dict[str, object]]) -> str:
    lines = ["# First verdict on a cluster we did not build", "",
             "Seconds from typing `harness init` (the member already running) to the end of each "
             "step, on the file init wrote, unedited (`bench/first_verdict.py`).", "",
             "| member | init | probe | first verdict | scenario |", "|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['member']} | {r.get('init', '-')} | {r.get('probe', '-')} | "
                     f"{r.get('first verdict', '-')} | {r.get('scenario') or r.get('stopped', '')} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python bench/first_verdict.py",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--member", action="append", help="only this member (repeatable)")
    parser.add_argument("--out", type=Path, default=ROOT / "reports" / "first-verdict.md")
    args = parser.parse_args(argv)
    chosen = [m for m in members() if m.init and (not args.member or m.name in args.member)]
    if not chosen:
        parser.error("no zoo member with init arguments is called "
                     f"{', '.join(args.member or [])}; the zoo has {', '.join(m.name for m in members())}")
    rows = []
    for member in chosen:
        print(f"first verdict: {member.name} ...", file=sys.stderr, flush=True)
        with tempfile.TemporaryDirectory(prefix=f"first-{member.name}-") as work:
            rows.append(first_verdict(member, Path(work)))
        print(f"first verdict: {rows[-1]}", file=sys.stderr, flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(markdown(rows))
    print(markdown(rows), end="")
    return 0 if all("first verdict" in r for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
