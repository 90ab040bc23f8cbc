"""What a reader of the Allure report sees: plots of the request log and fault timeline, and
the environment and categories files that make Allure's overview meaningful.

The timeline plot is the one people look at first: every request as a dot at its start time,
one row per serving node, failures in red on their own row, fault windows shaded.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from harness.errors import HarnessError  # noqa: E402
from harness.history.timeline import FaultEvent  # noqa: E402
from harness.history.requests import RequestRecord  # noqa: E402
from harness.saturation import Capacity  # noqa: E402

# Matched by the exception's class name, which Allure's message starts with. Allure 3 puts a
# result in every category that matches, so the last one excludes the three before it.
CATEGORIES = [
    {"name": "contract violated", "matchedStatuses": ["failed"],
     "messageRegex": r"(?s).*ContractViolation.*",
     "description": "The cluster broke a promise of the contract (C1-C14)."},
    {"name": "inconclusive: not enough evidence", "matchedStatuses": ["failed"],
     "messageRegex": r"(?s).*Inconclusive.*",
     "description": "The run lacked the evidence to judge a property; the message says what "
                    "was missing and how to get it. Never a pass."},
    {"name": "configuration error", "matchedStatuses": ["broken", "failed"],
     "messageRegex": r"(?s).*ConfigurationError.*",
     "description": "The cluster answered, but not as the topology says (login refused, "
                    "certificate not verified, no node identity): fix the topology."},
    {"name": "aborted", "matchedStatuses": ["broken", "failed", "skipped"],
     "messageRegex": r"(?s).*(?:Aborted|KeyboardInterrupt).*",
     "description": "The run was stopped from outside (harness abort, SIGTERM, the abort file) "
                    "or by a stop condition; every fault in force was healed."},
    {"name": "harness or infrastructure error", "matchedStatuses": ["broken", "failed"],
     "messageRegex": r"(?s)(?!.*(?:ContractViolation|Inconclusive|ConfigurationError|Aborted|KeyboardInterrupt)).*",
     "description": "The harness could not run the scenario; the cluster was not judged."},
]


def timeline_png(records: Sequence[RequestRecord], faults: Sequence[FaultEvent], path: Path,
                 title: str) -> Path:
    t0 = min([r.start_mono for r in records] + [f.start_mono for f in faults], default=0.0)
    nodes = sorted({r.node for r in records if r.ok and r.node})
    rows = {n: i for i, n in enumerate(nodes)}
    fail_row = len(nodes)
    fig, ax = plt.subplots(figsize=(10, 1.2 + 0.45 * (len(nodes) + 1)), dpi=100)
    for f in faults:
        end = (f.end_mono if f.end_mono is not None else f.start_mono) - t0
        ax.axvspan(f.start_mono - t0, end, color="orange", alpha=0.25)
        ax.text(f.start_mono - t0, fail_row + 0.55, f"{f.kind} {f.target}", fontsize=8,
                va="top", color="darkorange")
    ok = [r for r in records if r.ok and r.node in rows]
    bad = [r for r in records if not r.ok]
    ax.scatter([r.start_mono - t0 for r in ok], [rows[r.node or ""] for r in ok], s=6,
               c=[f"C{rows[r.node or '']}" for r in ok], marker="|")
    ax.scatter([r.start_mono - t0 for r in bad], [fail_row] * len(bad), s=14, c="red", marker="x")
    ax.set_yticks(range(len(nodes) + 1), [*nodes, "failed"])
    ax.set_ylim(-0.6, fail_row + 0.7)
    ax.set_xlabel("seconds since the first request")
    ax.set_title(title, fontsize=10)
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def shares_png(records: Sequence[RequestRecord], nodes: Sequence[str], path: Path,
               title: str) -> Path:
    served = Counter(r.node for r in records if r.ok)
    total = sum(served[n] for n in nodes) or 1
    fig, ax = plt.subplots(figsize=(5, 3), dpi=100)
    ax.bar(list(nodes), [served[n] / total for n in nodes], color=[f"C{i}" for i in range(len(nodes))])
    ax.axhline(1 / max(len(nodes), 1), color="black", linestyle="--", linewidth=1, label="fair share")
    ax.set_ylabel("share of successful requests")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def capacity_png(searches: Sequence[tuple[str, Capacity]], path: Path, title: str) -> Path:
    """Throughput and p95 latency against the offered load, one line per search (N nodes,
    N+1 nodes), each knee marked: where people look to see whether a cluster saturated, and
    where."""
    fig, (served, latency) = plt.subplots(1, 2, figsize=(11, 4.2), dpi=100)
    top = max((s.offered_rps for _, c in searches for s in c.steps), default=1.0)
    served.plot([0, top], [0, top], color="grey", linestyle=":", linewidth=1, label="served = offered")
    for i, (label, found) in enumerate(searches):
        offered = [s.offered_rps for s in found.steps]
        color = f"C{i}"
        served.plot(offered, [s.served_rps for s in found.steps], marker="o", color=color,
                    label=f"{label}: {found.label()}")
        latency.plot(offered, [s.p95_s * 1000 for s in found.steps], marker="o", color=color, label=label)
        knee = next((s for s in found.steps if s.number == found.knee), None)
        if knee is not None:
            served.scatter([knee.offered_rps], [knee.served_rps], s=160, facecolors="none",
                           edgecolors=color, linewidths=2)
            served.annotate(f"knee: step {knee.number}", (knee.offered_rps, knee.served_rps),
                            textcoords="offset points", xytext=(6, -14), fontsize=8, color=color)
            latency.scatter([knee.offered_rps], [knee.p95_s * 1000], s=160, facecolors="none",
                            edgecolors=color, linewidths=2)
        served.axhline(found.rps, color=color, linestyle="--", linewidth=0.8)
    served.set_xlabel("offered (req/s)")
    served.set_ylabel("served (req/s)")
    served.legend(loc="upper left", fontsize=8)
    latency.set_xlabel("offered (req/s)")
    latency.set_ylabel("p95 latency (ms)")
    latency.legend(loc="upper left", fontsize=8)
    for ax in (served, latency):
        ax.grid(alpha=0.3)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def write_environment(results_dir: Path, values: Mapping[str, object]) -> None:
    """`environment.properties`, `categories.json` and, in CI, `executor.json`."""
    results_dir.mkdir(parents=True, exist_ok=True)
    (results_dir / "environment.properties").write_text(
        "".join(f"{k}={v}\n" for k, v in values.items()))
    (results_dir / "categories.json").write_text(json.dumps(CATEGORIES, indent=2))
    if os.environ.get("CI"):
        (results_dir / "executor.json").write_text(json.dumps({
            "name": os.environ.get("CI_NAME", "CI"), "type": "ci",
            "buildName": os.environ.get("GITHUB_RUN_ID", "local CI run"),
            "buildUrl": os.environ.get("CI_BUILD_URL", ""),
        }))


def soak_timeline_png(per_second: Mapping[int, Mapping[str, int]], faults: Sequence[FaultEvent],
                      violated: Sequence[tuple[float, float]], t0: float, path: Path,
                      title: str) -> Path:
    """The whole soak on one plot: answers per second by serving node, failures in red, every
    fault shaded (labelled while there are few enough to read), violating windows marked."""
    seconds = sorted(per_second)
    keys = sorted({k for counts in per_second.values() for k in counts} - {"failed"})
    fig, ax = plt.subplots(figsize=(14, 4.5), dpi=100)
    for i, node in enumerate(keys):
        ax.plot(seconds, [per_second[s].get(node, 0) for s in seconds], color=f"C{i}",
                linewidth=0.8, label=node)
    ax.plot(seconds, [per_second[s].get("failed", 0) for s in seconds], color="red",
            linewidth=1.0, label="failed")
    for f in faults:
        end = (f.end_mono if f.end_mono is not None else f.start_mono) - t0
        ax.axvspan(f.start_mono - t0, max(end, f.start_mono - t0 + 0.5), color="orange", alpha=0.25)
        if len(faults) <= 40:
            ax.text(f.start_mono - t0, 0.98, f"{f.kind} {f.target}", fontsize=6, rotation=90,
                    va="top", color="darkorange", transform=ax.get_xaxis_transform())
    for start, end in violated:
        ax.axvspan(start - t0, end - t0, ymin=0.0, ymax=0.04, color="red")
    ax.set_xlabel("seconds since the soak started (orange: faults; red bar: violating window)")
    ax.set_ylabel("answers per second")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=7, loc="lower right", ncol=len(keys) + 1)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def write_html(results: Path, html: Path) -> Path:
    """Allure HTML as one file that opens from disk (`index.html`: a multi-file report needs
    a web server, and shows "Failed to fetch" when opened as a file), beside the multi-file
    site (`site/`, for `allure open` and for the trend history carried to the next report).
    Returns the one file."""
    if not results.is_dir():
        raise HarnessError(f"no Allure results in {str(results)!r}; run pytest with --alluredir first")
    if shutil.which("allure") is None:
        raise HarnessError("the allure command line is not installed; run scripts/setup.sh")
    site = html / "site"
    for history in (site / "history", html / "history"):  # html/history: reports made before
        if history.is_dir():
            shutil.copytree(history, results / "history", dirs_exist_ok=True)
    _allure_generate(results, site)
    with tempfile.TemporaryDirectory(prefix="harness-report-") as scratch:
        _allure_generate(results, Path(scratch), "--single-file")
        for old in html.iterdir():  # what an earlier layout left beside the site
            if old != site:
                shutil.rmtree(old) if old.is_dir() else old.unlink()
        shutil.move(str(Path(scratch) / "index.html"), html / "index.html")
    return html / "index.html"


def _allure_generate(results: Path, out: Path, *options: str) -> None:
    done = subprocess.run(["allure", "generate", str(results), "-o", str(out), "--clean", *options],
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise HarnessError(f"allure generate failed: {done.stderr.strip()[-200:]}")
