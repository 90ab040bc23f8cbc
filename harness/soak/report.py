"""The files a soak leaves: what `harness soak` writes to its report directory and the
pytest entry attaches to Allure."""

from __future__ import annotations

import json
import shutil
from collections import Counter
from dataclasses import asdict
from pathlib import Path

from harness import report
from harness.history.timeline import FaultTimeline
from harness.soak.run import SoakResult


def write_report(result: SoakResult, directory: Path) -> dict[str, Path]:
    """The soak's report files: the timeline plot, the per-window table, the schedule and the
    faults injected, a JSON summary and the worst windows' request logs; `harness soak` leaves them in its report
    directory, the pytest entry attaches them to Allure."""
    directory.mkdir(parents=True, exist_ok=True)
    plan, verdict = result.plan, result.verdict
    violated = [(w.start, w.end) for w in result.windows if w.outcome == "violated"]
    files = {
        "timeline": report.soak_timeline_png(
            result.per_second, result.events, violated, result.t0, directory / "soak-timeline.png",
            f"soak of {plan.minutes:g} min, seed {plan.seed}: {verdict.outcome}"),
        "windows": directory / "soak-windows.csv",
        "schedule": directory / "soak-schedule.txt",
        "summary": directory / "soak-summary.json",
        "fault timeline": directory / "soak-faults.jsonl",
    }
    FaultTimeline(result.events).write(files["fault timeline"])
    files["windows"].write_text(result.table_csv())
    files["schedule"].write_text(f"seed {plan.seed}, policy {plan.policy}, nemesis "
                                 f"{','.join(plan.nemesis)}\n" + "".join(f"{f}\n" for f in result.schedule))
    files["summary"].write_text(json.dumps({
        "verdict": verdict.outcome, "explanation": verdict.summary(), "seed": plan.seed,
        "plan": asdict(plan), "figures": result.figures,
        "windows": dict(Counter(w.outcome for w in result.windows)),
        "end_checks": [v.summary() for v in result.end_verdicts],
        "stopped_early": result.stopped_early}, indent=1))
    for log in result.worst_logs:
        if log.exists():
            files[log.stem] = Path(shutil.copy(log, directory / log.name))
    return files
