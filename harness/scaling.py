"""C13's measurement: the cluster saturated, one more node added, the cluster saturated again.

Shared by the scenario (`scenarios/test_scale.py`) and `harness scalability`, so both search
the same way with the same options (the thresholds' `step_*`, `max_steps`, `max_step_p95`,
`min_served_ratio`, `error_budget`): the offered load is stepped up until a step is past
saturation or the generator is at its limit (`harness.saturation`), the search ending there,
not at a planned length. The steps are the generator's record (`harness.history.steps`), the
answers the request log; the verdict and the plot are made from those two alone.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from harness import report
from harness.evidence import Call
from harness.history.requests import RequestRecord
from harness.saturation import Capacity, StepFigures, capacity, ends_search, measure
from harness.traffic.plan import StepSchedule
from harness.verdict import Verdict
from harness.world import World

SEARCH_MAX_REQUESTS = 20_000_000  # a bound on a search's requests; its steps end it long before
POLL_S = 0.25

StepSeen = Callable[[str, StepFigures], None]


@dataclass(frozen=True)
class Search:
    """One saturation search: what it was of, what it found, the answers it got."""

    label: str
    capacity: Capacity
    records: list[RequestRecord]


def saturate(world: World, call: Call | None, label: str, on_step: StepSeen | None = None) -> Search:
    """Step the load through the entry up until the cluster is past saturation, the generator
    is at its limit, or the plan's steps run out; `on_step` hears of each step as it ends."""
    t = world.thresholds
    bounds = world.judge.step_bounds
    plan: dict[str, object] = {"users": t.step_users, "rate": t.step_rate,
                               "max_requests": SEARCH_MAX_REQUESTS}
    if call is not None:
        plan["call"] = call.model_dump()
    with world.report.step(f"saturation search, {label}: +{t.step_users} users x {t.step_rate:g}/s "
                           f"every {t.step_seconds:g} s, at most {t.max_steps} steps"):
        load = world.traffic.new_load(protocol="http", steps=StepSchedule(seconds=t.step_seconds,
                                                                          count=t.max_steps), **plan)
        with load:
            seen = 0
            while load.running():
                steps = load.steps()
                if len(steps) > seen:
                    figures = measure(load.records_so_far(), steps, bounds)
                    for step in figures[seen:]:
                        if on_step is not None:
                            on_step(label, step)
                    seen = len(steps)
                    if ends_search(figures[-1]):
                        load.end_now()
                        break
                time.sleep(POLL_S)
        found = capacity(measure(load.records, load.steps(), bounds))
        world.log.extend(load.records)
        world.report.attach(f"saturation search, {label}", found.says())
    return Search(label, found, load.records)


@contextmanager
def one_more_node(world: World) -> Iterator[str]:
    """A node added to the cluster for the body (its id), waited for in the balancer's
    rotation for at most the rejoin bound (one that never enters it is what C13 judges), and
    removed again after, whatever happens (Ctrl-C included): a user's cluster is left as it
    was found."""
    with world.report.step("one more node added"):
        node = world.cluster.add_node()
    try:
        late = world.cluster.wait_in_rotation([node], timeout_s=world.thresholds.rejoin_bound,
                                              strict=False)
        world.report.attach("new node", f"{node} added" + (f"; {late}" if late else ", in rotation"))
        yield node
    finally:
        with world.report.step(f"{node} removed again"):
            world.cluster.remove_node(node)


@dataclass(frozen=True)
class Scaling:
    """Both searches of C13 and the node added between them."""

    before: Search
    after: Search
    new_node: str
    nodes_before: int

    def verdict(self, world: World) -> Verdict:
        return world.judge.scales(self.before.capacity, self.after.capacity, self.after.records,
                                  self.new_node, self.nodes_before)

    def plot(self, path: Path, title: str) -> Path:
        return report.capacity_png([(s.label, s.capacity) for s in (self.before, self.after)],
                                   path, title)


def scale_by_one(world: World, call: Call | None, on_step: StepSeen | None = None) -> Scaling:
    """Saturate the cluster, add a node, saturate it again (the node removed at the end)."""
    nodes = len(world.nodes)
    before = saturate(world, call, f"{nodes} nodes", on_step)
    with one_more_node(world) as node:
        after = saturate(world, call, f"{nodes + 1} nodes", on_step)
    return Scaling(before, after, node, nodes)
