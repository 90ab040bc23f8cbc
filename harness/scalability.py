"""The scalability run: saturation throughput with N nodes, then with N+1, and their ratio.

`harness scalability` starts a reference cluster, runs the step load shape of `loadtests/`
(a Locust subprocess) until the cluster saturates, adds a node, and runs it again. The
workload defaults to the slow service, so that each node's capacity is its thread pool and
not this machine's cores; on a 2-core machine the load generator would otherwise be the
bottleneck and the ratio would measure Locust. Writes `scalability.json` and a plot of
throughput against users for both runs.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.cluster.backends import start_cluster
from harness.errors import HarnessError

ROOT = Path(__file__).resolve().parents[1]
LOADTESTS = ROOT / "loadtests"


@dataclass(frozen=True)
class StepPlan:
    service: str = "harness.demo:slow?delay=100"
    step_users: int = 8
    step_seconds: float = 4.0
    max_users: int = 160
    max_p95_ms: float = 250.0
    max_error_rate: float = 0.01


def saturate(endpoints: Path, plan: StepPlan, report: Path) -> dict[str, Any]:
    """Run the step shape against the cluster in `endpoints`; returns its step report."""
    argv = [sys.executable, "-m", "locust", "-f", f"{LOADTESTS}/,{LOADTESTS / '_step_shape.py'}",
            "--headless", "--only-summary", "--endpoints-file", str(endpoints),
            "--service", plan.service, "--https-weight", "0", "--ftp-weight", "0", "--smtp-weight", "0",
            "--step-users", str(plan.step_users), "--step-seconds", str(plan.step_seconds),
            "--step-max-users", str(plan.max_users), "--max-p95-ms", str(plan.max_p95_ms),
            "--max-error-rate", str(plan.max_error_rate), "--step-report", str(report),
            "--nodes-csv", str(report.with_suffix(".nodes.csv"))]
    limit = plan.step_seconds * (plan.max_users / plan.step_users + 2) + 60
    done = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          timeout=limit, cwd=ROOT)
    for line in done.stdout.splitlines():
        if line.startswith(("step ", "saturation")):
            print(f"  {line}", file=sys.stderr, flush=True)
    if done.returncode != 0 or not report.exists():
        tail = " | ".join(done.stdout.strip().splitlines()[-3:])
        raise HarnessError(f"the Locust step run failed (exit {done.returncode}): {tail}")
    return json.loads(report.read_text())


def run(backend: str, nodes: int, plan: StepPlan, out: Path) -> dict[str, Any]:
    out.mkdir(parents=True, exist_ok=True)
    endpoints = out / "scalability-endpoints.json"
    with start_cluster(backend, nodes) as cluster:
        runs = []
        for n in (nodes, nodes + 1):
            if n > nodes:
                print(f"harness: adding node {n}", file=sys.stderr, flush=True)
                cluster.wait_in_rotation([cluster.add_node()])
            endpoints.write_text(json.dumps({"topology": json.loads(cluster.topology.model_dump_json())}))
            print(f"harness: saturating {n} nodes ({plan.service})", file=sys.stderr, flush=True)
            runs.append({"nodes": n, **saturate(endpoints, plan, out / f"scalability-{n}.json")})
        endpoints.unlink(missing_ok=True)
    before, after = runs[0]["saturation_rps"], runs[1]["saturation_rps"]
    summary = {"backend": cluster.backend, "plan": plan.__dict__, "runs": runs,
               "ratio": round(after / before, 3) if before else 0.0}
    (out / "scalability.json").write_text(json.dumps(summary, indent=2))
    plot(summary, out / "scalability.png")
    return summary


def plot(summary: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    for r in summary["runs"]:
        steps = r["steps"]
        ax.plot([s["users"] for s in steps], [s["rps"] for s in steps], marker="o",
                label=f"{r['nodes']} nodes: saturation {r['saturation_rps']:.0f} req/s")
        ax.axhline(r["saturation_rps"], linestyle=":", linewidth=1, color=ax.lines[-1].get_color())
    ax.set_xlabel("users")
    ax.set_ylabel("throughput (req/s)")
    ax.set_title(f"N -> N+1 nodes: throughput x{summary['ratio']:.2f} ({summary['backend']} backend)")
    ax.legend(loc="lower right")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
