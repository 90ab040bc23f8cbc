"""Saturation found, not assumed: a stepped load judged step by step, and what limited it.

C13 asks whether one more node raises the throughput a cluster reaches when saturated. A
throughput is a capacity only if the cluster was saturated while it was measured: a cluster
whose nodes outran a fixed load "scaled x0.99" while the new node took its full share (a
false alarm on a sound cluster). So the load is stepped up (users added per step, each
offering the same rate) and each step is judged from the request log, on its last two thirds
(the first lets the new users start and the queues settle). A step is past saturation when

- it served clearly less than it offered (served / offered under `min_served_ratio`): the
  users, each waiting for its answers, could not keep their rate;
- its p95 latency passed `max_step_p95`; or
- more than `error_budget` of its answers failed.

The search stops at the first step past saturation, the knee, or where the generator itself
is at its limit; the capacity is the most served in a step up to there. What ended the search
says what the figure is worth (`Limit`); only a knee reached by a generator below its limit,
after at least one step served within the bounds, is a saturated measurement.

Pure: the steps come from the generator's record (`harness.history.steps`), the answers from
the request log, so a search can be judged again from its files. C13's check (`scales`) is
here too, beside the searches it compares.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

from harness.checks import quantile
from harness.history.requests import RequestRecord
from harness.history.steps import LoadStep
from harness.properties import Property
from harness.verdict import Figures, Missing, Verdict, decide

GENERATOR_BUSY = 0.85
"""a generating process that asked for this much of a core (on a CPU or waiting for one) over
a step could not have offered more: the step measured the generator as much as the cluster"""
SETTLE_SHARE = 1 / 3  # the part of each step left out of its judgement

Limit = Literal["cluster", "generator", "unsaturated", "first step", "no step"]


@dataclass(frozen=True)
class Bounds:
    """When a step is past saturation (bound to the thresholds' `min_served_ratio`,
    `max_step_p95` and `error_budget` by `harness.judge`)."""

    min_served_ratio: float
    max_p95_s: float
    max_error_rate: float


@dataclass(frozen=True)
class StepFigures:
    """One step as measured: what was offered, what was served, and how busy the generator was."""

    number: int
    users: int
    offered_rps: float
    judged_s: float
    answers: int
    served_rps: float
    p95_s: float
    error_rate: float
    generator_busy: float | None
    generator: str = ""
    past: str = ""
    """why the step is past saturation ("" if it was served within the bounds)"""


def past_saturation(offered_rps: float, served_rps: float, p95_s: float, error_rate: float,
                    answers: int, bounds: Bounds) -> str:
    """Why a step with these figures is past saturation, or "" if it is within the bounds."""
    if answers == 0:
        return "no answer at all"
    why = []
    if offered_rps > 0 and served_rps < bounds.min_served_ratio * offered_rps:
        why.append(f"served {served_rps:.0f} of the {offered_rps:.0f} req/s offered "
                   f"({served_rps / offered_rps:.0%} < {bounds.min_served_ratio:.0%})")
    if p95_s > bounds.max_p95_s:
        why.append(f"p95 {p95_s:.3f} s > {bounds.max_p95_s:g} s")
    if error_rate > bounds.max_error_rate:
        why.append(f"{error_rate:.1%} of answers failed (budget {bounds.max_error_rate:.1%})")
    return "; ".join(why)


def measure(records: Sequence[RequestRecord], steps: Sequence[LoadStep],
            bounds: Bounds) -> list[StepFigures]:
    """Each step's figures from the answers that ended in its judged part."""
    done = sorted(records, key=lambda r: r.end_mono)
    ends = [r.end_mono for r in done]
    figures = []
    for step in steps:
        start = step.start_mono + (step.end_mono - step.start_mono) * SETTLE_SHARE
        seconds = step.end_mono - start
        mine = done[bisect.bisect_left(ends, start):bisect.bisect_right(ends, step.end_mono)]
        served = sum(r.ok for r in mine)
        served_rps = served / seconds if seconds > 0 else 0.0
        p95 = quantile(sorted(r.duration for r in mine), 0.95)
        error_rate = 1 - served / len(mine) if mine else 0.0
        figures.append(StepFigures(
            step.number, step.users, step.offered_rps, round(seconds, 3), len(mine),
            round(served_rps, 1), round(p95, 4), round(error_rate, 4), step.generator_busy,
            step.generator,
            past_saturation(step.offered_rps, served_rps, p95, error_rate, len(mine), bounds)))
    return figures


def generator_at_limit(step: StepFigures) -> bool:
    """The generator may have been what limited this step (or its CPU was not measured)."""
    return step.generator_busy is None or step.generator_busy >= GENERATOR_BUSY


def ends_search(step: StepFigures) -> bool:
    """The search stops after this step: it is past saturation, or the generator cannot offer
    more than it did."""
    return bool(step.past) or generator_at_limit(step)


@dataclass(frozen=True)
class Capacity:
    """What a saturation search found: its steps, what ended it, and the throughput reached."""

    steps: tuple[StepFigures, ...]
    limit: Limit
    rps: float
    """the most served in a step up to the one that ended the search (req/s)"""
    knee: int | None
    """the first step past saturation, if the search reached one"""

    @property
    def saturated(self) -> bool:
        """A saturated measurement of the cluster: the only kind a capacity verdict uses."""
        return self.limit == "cluster"

    @property
    def last(self) -> StepFigures | None:
        return self.steps[-1] if self.steps else None

    def says(self) -> str:
        """One sentence: what ended the search, in the figures of the step that ended it."""
        s = self.last
        if s is None:
            return "the search ran no step"
        busy = "not measured" if s.generator_busy is None else f"{s.generator_busy:.0%} of a core"
        gen = f"the load generator's busiest process {s.generator or ''} at {busy}".replace("  ", " ")
        at = f"step {s.number}: {s.users} users offering {s.offered_rps:.0f} req/s, served {s.served_rps:.0f}"
        return {
            "cluster": f"saturated at {self.rps:.0f} req/s ({at}; {s.past}; {gen})",
            "generator": f"the load generator was at its limit, so the cluster's may not have "
                         f"been reached ({at}{'; ' + s.past if s.past else ''}; {gen})",
            "unsaturated": f"not saturated: the last step was served in full ({at}, p95 "
                           f"{s.p95_s:.3f} s; {gen})",
            "first step": f"already past saturation at the first step, so no knee was seen "
                          f"({at}; {s.past}; {gen})",
            "no step": "the search ran no step",
        }[self.limit]

    def label(self) -> str:
        """A few words for a plot's legend."""
        return {"cluster": f"saturated at {self.rps:.0f} req/s",
                "generator": f"{self.rps:.0f} req/s, the generator at its limit",
                "unsaturated": f"{self.rps:.0f} req/s, not saturated",
                "first step": "past saturation at the first step",
                "no step": "no step"}[self.limit]

    def advice(self) -> str:
        """How to get a saturated measurement next time."""
        return {
            "cluster": "",
            "generator": "offer more from more load processes (--load-processes) or from load "
                         "machines of their own",
            "unsaturated": "offer more: more users per step (--step-users), a higher rate per "
                           "user (--step-rate) or more steps (--max-steps)",
            "first step": "start below saturation: fewer users per step (--step-users), a rate "
                          "per user under 1 / the service's latency (--step-rate), or a looser "
                          "--max-step-p95",
            "no step": "let the search run at least one step (--max-steps, --step-seconds)",
        }[self.limit]

    def as_dict(self) -> dict[str, Any]:
        """The search as JSON: what ended it, the throughput reached, every step."""
        return {"limit": self.limit, "saturated": self.saturated, "rps": self.rps,
                "knee": self.knee, "says": self.says(), "advice": self.advice(),
                "steps": [asdict(s) for s in self.steps]}

    def figures(self, prefix: str) -> Figures:
        s = self.last
        out: Figures = {f"{prefix}_rps": round(self.rps, 1), f"{prefix}_limit": self.limit,
                        f"{prefix}_steps": len(self.steps)}
        if s is not None:
            out[f"{prefix}_generator_busy"] = "not measured" if s.generator_busy is None \
                else round(s.generator_busy, 3)
        for step in self.steps:
            busy = "?" if step.generator_busy is None else f"{step.generator_busy:.0%}"
            out[f"{prefix}_step_{step.number}"] = (
                f"{step.users} users, {step.offered_rps:g} req/s offered, {step.served_rps:g} served, "
                f"p95 {step.p95_s * 1000:.0f} ms, {step.error_rate:.1%} failed, generator {busy}"
                + (f" (past saturation: {step.past})" if step.past else ""))
        return out


def capacity(steps: Sequence[StepFigures]) -> Capacity:
    """What the search found in `steps` (those after the first that ends it are ignored)."""
    if not steps:
        return Capacity((), "no step", 0.0, None)
    stop = next((i for i, s in enumerate(steps) if ends_search(s)), None)
    seen = tuple(steps if stop is None else steps[:stop + 1])
    rps = max(s.served_rps for s in seen)
    last = seen[-1]
    knee = last.number if last.past else None
    if stop is None:
        limit: Limit = "unsaturated"
    elif generator_at_limit(last):
        limit = "generator"
    elif stop == 0:
        limit = "first step"
    else:
        limit = "cluster"
    return Capacity(seen, limit, rps, knee)


SHARE_ANSWERS = 50  # successful answers after a node was added, to judge the share it took


def scales(before: Capacity, after: Capacity, after_records: Sequence[RequestRecord],
           new_node: str, nodes_before: int, min_gain: float, tolerance: float = 0.5,
           prop: Property = Property.C13) -> Verdict:
    """One more node raises saturated throughput by `min_gain`, and takes its share of the
    requests served after it was added. The gain is judged only between two saturated
    measurements (`harness.saturation`): a search the generator limited, or one the cluster
    served in full, is no capacity, and says what limited it and how to offer more. The new
    node's share is judged from the answers after it was added, saturated or not."""
    served = [r for r in after_records if r.ok]
    new_node_share = sum(r.node == new_node for r in served) / max(len(served), 1)
    fair_share = 1 / (nodes_before + 1)
    gain = after.rps / before.rps if before.rps else 0.0
    figures: Figures = {**before.figures("before"), **after.figures("after"),
                        "ratio": round(gain, 3), "min_ratio": min_gain,
                        "new_node_share": round(new_node_share, 3),
                        "fair_share": round(fair_share, 3), "answers_after": len(served)}
    problems, missing = [], []
    for when, found in (("before", before), ("after", after)):
        if not found.saturated:
            missing.append(Missing(f"a saturated measurement {when} the node was added: "
                                   f"{found.says()}", found.advice()))
    if before.saturated and after.saturated and gain < min_gain:
        problems.append(f"saturated throughput went from {before.rps:.0f} to {after.rps:.0f} "
                        f"req/s (x{gain:.2f} < x{min_gain}) with one more node")
    if len(served) < SHARE_ANSWERS:
        missing.append(Missing(f"{len(served)} successful answers after the node was added "
                               f"(the new node's share needs {SHARE_ANSWERS})",
                               "a longer search (--step-seconds, --max-steps)"))
    elif new_node_share < fair_share * (1 - tolerance):
        problems.append(f"the new node {new_node} served {new_node_share:.0%} of the "
                        f"{len(served)} requests answered after it was added (fair share "
                        f"{fair_share:.0%})")
    return decide(prop, "scales", problems, missing,
                  f"saturated throughput x{gain:.2f} ({before.rps:.0f} -> {after.rps:.0f} "
                  f"req/s) with one more node taking {new_node_share:.0%}", figures)
