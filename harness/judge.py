"""The checks with one run's thresholds: where each bound meets its check, once.

Every check a threshold bounds is judged here: the scenarios (`scenario.judge`), the soak's
windows and `harness scalability` use the same `Judge`, so a bound given on the command line
means the same everywhere and no scenario passes one by hand. Checks no threshold bounds are
called from `harness.checks` directly.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from harness import checks
from harness.config import BalancingUnit
from harness.history.timeline import FaultEvent
from harness.history.observations import Observation
from harness.history.requests import RequestRecord
from harness.properties import Property
from harness.saturation import Bounds, Capacity, scales
from harness.thresholds import Thresholds
from harness.verdict import Verdict


class Judge:
    def __init__(self, thresholds: Thresholds) -> None:
        self.thresholds = thresholds

    def failover(self, records: Sequence[RequestRecord], fault: FaultEvent, prop: Property) -> Verdict:
        t = self.thresholds
        return checks.failover(records, fault, error_budget=t.error_budget,
                               max_gap_s=t.max_failover_gap, max_wait_s=t.max_failover_wait,
                               max_latency_s=t.max_failover_latency,
                               min_victim_requests=t.min_victim_requests,
                               min_window_requests=t.min_window_requests, prop=prop)

    def balance(self, records: Sequence[RequestRecord], nodes: Sequence[str],
                unit: BalancingUnit, prop: Property = Property.C1) -> Verdict:
        t = self.thresholds
        return checks.balance(records, nodes, tolerance=t.balance_tolerance,
                              alpha=t.balance_alpha, unit=unit, prop=prop)

    def replicated(self, observations: Iterable[Observation], nodes: Sequence[str], version: str,
                   published_at: float) -> Verdict:
        return checks.replicated_within(observations, nodes, version, published_at,
                                        self.thresholds.replication_bound)

    def observations_needed(self, nodes: int) -> int:
        """Per node, for a balance verdict (C1)."""
        t = self.thresholds
        return checks.observations_needed(nodes, t.balance_tolerance, t.balance_alpha)

    def rejoin(self, records: Sequence[RequestRecord], node: str, back_at: float,
               nodes: Sequence[str], unit: BalancingUnit) -> Verdict:
        t = self.thresholds
        return checks.rejoined(records, node, back_at, t.rejoin_bound, nodes,
                               tolerance=t.rejoin_tolerance, alpha=t.balance_alpha, unit=unit)

    def rejoin_judgeable(self, records: Sequence[RequestRecord], node: str, back_at: float,
                         nodes: Sequence[str]) -> bool:
        t = self.thresholds
        return checks.rejoin_judgeable(records, node, back_at, t.rejoin_bound, nodes,
                                       tolerance=t.rejoin_tolerance, alpha=t.balance_alpha)

    @property
    def step_bounds(self) -> Bounds:
        """When a step of a saturation search is past saturation."""
        t = self.thresholds
        return Bounds(t.min_served_ratio, t.max_step_p95, t.error_budget)

    def scales(self, before: Capacity, after: Capacity, after_records: Sequence[RequestRecord],
               new_node: str, nodes_before: int) -> Verdict:
        return scales(before, after, after_records, new_node, nodes_before,
                      self.thresholds.min_scale_ratio)
