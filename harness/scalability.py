"""`harness scalability`: C13's measurement as a command, on the reference cluster or on yours.

It saturates the cluster (the search of `harness.scaling`, with the scenario's options and
defaults: `harness.thresholds.SEARCH_OPTIONS`), adds a node, saturates it again, and writes
to the output folder `scalability.json` (every step of both searches, what ended each, the
verdict) and `scalability.png` (throughput and p95 against the offered load, knees marked).

Without a topology it starts a reference cluster of its own (`--nodes`, `--backend`) and
calls its slow service (`evidence.scale.load`), so that a node's capacity is its thread pool
and not this machine's cores. With `--topology FILE` it measures that cluster: probed first,
a node added by `evidence.scale.add` and removed by `evidence.scale.remove` at the end,
also on Ctrl-C and SIGTERM. The exit code is the verdict's: 0 passed, 1 violated, 2 bad
input, 3 inconclusive (a search that did not saturate the cluster, saying why), 5 aborted
(`harness abort`, SIGTERM, the abort file).
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path
from typing import Any

from harness import safety
from harness.cluster.backends import start_cluster
from harness.config import load_topology
from harness.errors import HarnessError
from harness.properties import Property
from harness.saturation import StepFigures
from harness.scaling import Scaling, scale_by_one
from harness.thresholds import Thresholds
from harness.traffic.workers import distributed, for_run
from harness.verdict import Verdict
from harness.world import World

EXIT = {"passed": 0, "violated": 1, "inconclusive": 3}


def say(line: str) -> None:
    print(f"harness: {line}", file=sys.stderr, flush=True)


def on_step(label: str, step: StepFigures) -> None:
    busy = "?" if step.generator_busy is None else f"{step.generator_busy:.0%}"
    say(f"{label}: step {step.number}: {step.users} users, {step.offered_rps:.0f} req/s offered, "
        f"{step.served_rps:.0f} served, p95 {step.p95_s * 1000:.0f} ms, generator {busy}"
        f"{'  <- ' + step.past if step.past else ''}")


def summary(scaling: Scaling, verdict: Verdict, where: str, thresholds: Thresholds) -> dict[str, Any]:
    return {
        "cluster": where, "nodes_before": scaling.nodes_before, "new_node": scaling.new_node,
        "searches": [{"label": s.label, **s.capacity.as_dict()} for s in (scaling.before, scaling.after)],
        "verdict": {"outcome": verdict.outcome, "explanation": verdict.explanation,
                    "figures": verdict.figures},
        "options": {name: getattr(thresholds, name) for name in Thresholds.search_fields()},
    }


def run(thresholds: Thresholds, out: Path, backend: str = "auto", nodes: int = 3,
        mutant: str | None = None, topology: Path | None = None, allow_remote: bool = False,
        load_master: str | None = None, abort_file: Path | None = None) -> int:
    """Measure, write the JSON and the plot, say the verdict; the verdict's exit code."""
    spec = None
    distributed(thresholds.load_workers, load_master, None)  # a bad option, said before anything runs
    if topology is not None:
        from harness.probe import probe

        spec = load_topology(topology, allow_remote=allow_remote)
        scale = spec.evidence.scale
        if scale is None or scale.add is None:
            raise HarnessError(f"{topology} gives no command that adds a node: set "
                               "`evidence.scale.add` and `evidence.scale.remove`")
        if problems := probe(spec).problems:
            raise HarnessError(f"probe of {topology}: {problems[0]}")

    safety.install("harness scalability", abort_file)
    out.mkdir(parents=True, exist_ok=True)
    with start_cluster(backend, nodes, mutant, str(topology) if topology else None,
                       allow_remote) as cluster, \
            tempfile.TemporaryDirectory(prefix="harness-scalability-") as scratch, \
            for_run(thresholds.load_workers, load_master, spec) as workers:
        where = str(topology) if topology else f"reference cluster ({cluster.backend})"
        say(f"saturating {where}, then again with one more node")
        world = World(cluster, thresholds, Path(scratch), (Property.C13,), workers=workers)
        scale = cluster.topology.evidence.scale
        try:
            scaling = scale_by_one(world, scale.load if scale else None, on_step)
        except safety.Aborted as e:
            say(f"ABORTED: {e.why}: the added node was removed, the load stopped")
            return 5
        except KeyboardInterrupt:
            say("interrupted: the added node was removed, the load stopped")
            return 130
        verdict = scaling.verdict(world)
    (out / "scalability.json").write_text(json.dumps(summary(scaling, verdict, where, thresholds),
                                                     indent=2))
    scaling.plot(out / "scalability.png", f"{where}: throughput against offered load")
    print(verdict.describe())
    say(f"wrote {out / 'scalability.json'} and {out / 'scalability.png'}")
    return EXIT[verdict.outcome]
