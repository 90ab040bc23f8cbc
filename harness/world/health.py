"""The steady state: is the cluster healthy enough to be faulted (`harness.safety`)? And the
stop conditions, watched while the run's load runs (`StopWatch`).

Every node not under one of this run's faults answers on its own endpoint, the entry is not
failing its answers, the operators' own health check (`safety.health`) reads; and a fault
keeps within the blast radius (`--max-faulted-nodes`). How the entry spreads its load is C1's
business, not health's: a skewed balancer is still faulted, and caught.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

from harness.cluster import Cluster
from harness.errors import HarnessError
from harness.injector import FaultInjector
from harness.history.requests import ENTRY, RequestLog, RequestRecord
from harness.safety import HARD_ERROR_RATE, NotHealthy, StopConditions, abort_self, stopped
from harness.thresholds import Thresholds
from harness.traffic.clients import HttpClient
from harness.traffic.load import Load
from harness.world.evidence import EvidenceReader

HEALTH_TIMEOUT_S = 2.0  # a node's own answer before a fault, before it counts as none
RECENT_S = 2.0  # the entry's answers looked at before a fault
ENTRY_UNHEALTHY = 0.2  # the share of them failing that makes a cluster unhealthy
POLL_S = 0.5
STOP_CHECK_S = 1.0  # how often the stop conditions are checked
STOP_WINDOW_S = 5.0  # the entry's answers a stop condition looks at
STOP_MIN_ANSWERS = 20  # fewer answers than this in the window say nothing


class Health:
    def __init__(self, cluster: Cluster, thresholds: Thresholds, injector: FaultInjector,
                 evidence: EvidenceReader, running_load: Callable[[], Load | None]) -> None:
        self.cluster, self.thresholds, self.injector = cluster, thresholds, injector
        self.evidence, self.running_load = evidence, running_load

    def down_nodes(self, besides: set[str]) -> dict[str, str]:
        """The nodes (but `besides`) that do not answer on their own endpoint, and how."""
        topology, down = self.cluster.topology, {}
        for node in topology.nodes:
            protocol = "http" if node.endpoints.http else "https" if node.endpoints.https else None
            if node.id in besides or protocol is None:
                continue
            record = HttpClient(topology, RequestLog(), verify=self.cluster.ca_file,
                                timeout_s=HEALTH_TIMEOUT_S).request(endpoint=node.id, protocol=protocol)
            if not record.ok:
                down[node.id] = f"did not answer on its own endpoint ({record.error or record.status})"
        return down

    def check_fails(self) -> str | None:
        """How the topology's own health check (`safety.health`) failed, or None."""
        health = self.cluster.topology.safety.health
        if health is None:
            return None
        try:
            self.evidence.fetch(health, self.cluster.node_ids[0])
        except HarnessError as e:
            return str(e)
        return None

    def unhealthy(self) -> list[str]:
        """What is wrong with the cluster now, a sentence each (none: healthy)."""
        wrong = [f"{node} {why}" for node, why in self.down_nodes(self.injector.in_force()).items()]
        load = self.running_load()
        if load is not None:
            since = time.monotonic() - RECENT_S
            recent = [r for r in load.records_so_far() if r.endpoint == ENTRY and r.end_mono >= since]
            failed = [r for r in recent if not r.ok]
            if recent and len(failed) > max(2, ENTRY_UNHEALTHY * len(recent)):
                wrong.append(f"the entry failed {len(failed)} of its {len(recent)} answers in the last "
                             f"{RECENT_S:g} s (first: {failed[0].error or failed[0].status})")
        if (failed_check := self.check_fails()) is not None:
            wrong.append(f"its health check failed: {failed_check}")
        return wrong

    def await_healthy(self, bound_s: float) -> list[str]:
        """Wait for the cluster to be healthy, at most `bound_s`; what was still wrong then."""
        deadline = time.monotonic() + bound_s
        while (wrong := self.unhealthy()) and time.monotonic() < deadline:
            time.sleep(POLL_S)
        return wrong

    def steady(self, node: str) -> None:
        """`NotHealthy` unless a fault on `node` may be injected now: the cluster healthy, and
        no more nodes out at once than the blast radius allows (`--max-faulted-nodes`),
        counting those under this run's other faults."""
        wrong = self.unhealthy()
        if wrong:
            raise NotHealthy(f"not run: the cluster was not healthy before the fault on {node}: "
                             + "; ".join(wrong))
        out = self.injector.in_force() | {node}
        limit = self.thresholds.max_faulted_nodes
        if len(out) > limit:
            raise NotHealthy(f"not run: a fault on {node} would have {len(out)} nodes out at once "
                             f"({', '.join(sorted(out))}), more than --max-faulted-nodes {limit}")


class StopWatch:
    """The run's stop conditions (`harness.safety.StopConditions`), judged from the entry's
    recent answers, the nodes' own endpoints and the topology's health check. The soak asks
    it between faults; a scenario's steady load is watched by a thread (`watching`) that
    aborts the whole run when one fires."""

    def __init__(self, health: Health, stops: StopConditions) -> None:
        self.health, self.stops = health, stops
        self.health_failing_since: float | None = None

    def why(self, now: float, records: Sequence[RequestRecord], ours: set[str]) -> str | None:
        """Why the run must stop now (a sentence), or None. `ours`: the nodes under the run's
        own faults or recovering from one: they count neither as healthy nor as down, and
        while there are any the entry may fail up to `HARD_ERROR_RATE`."""
        stops, health = self.stops, self.health
        nodes = health.cluster.node_ids
        down = health.down_nodes(ours)
        healthy = len(nodes) - len(ours & set(nodes)) - len(down)
        if healthy < stops.min_healthy_nodes:
            return (f"{healthy} node(s) healthy, fewer than --min-healthy-nodes {stops.min_healthy_nodes}: "
                    + "; ".join(f"{n} {why}" for n, why in down.items()))
        recent = [r for r in records if r.endpoint == ENTRY and r.end_mono >= now - STOP_WINDOW_S]
        failed = sum(not r.ok for r in recent)
        limit = stops.stop_error_rate if not ours else HARD_ERROR_RATE
        if len(recent) >= STOP_MIN_ANSWERS and failed > limit * len(recent):
            return (f"the entry failed {failed} of its {len(recent)} answers in {STOP_WINDOW_S:g} s, past "
                    f"{limit:.0%} {'with none of its faults in force' if not ours else 'during its faults'}")
        if health.cluster.topology.safety.health is not None:
            if health.check_fails():
                self.health_failing_since = self.health_failing_since or now
                if now - self.health_failing_since >= stops.stop_health_seconds:
                    return (f"the topology's health check (safety.health) failed for "
                            f"{now - self.health_failing_since:.0f} s")
            else:
                self.health_failing_since = None
        return None

    @contextmanager
    def watching(self, records: Callable[[], Sequence[RequestRecord]],
                 ours: Callable[[float], set[str]]) -> Iterator[None]:
        """Check the stop conditions every STOP_CHECK_S while the body runs; one that fires
        aborts the run (`harness.safety.abort_self`): the main thread unwinds, healing every
        fault in force and stopping the load, and the run ends aborted, saying why."""
        done = threading.Event()

        def watch() -> None:
            while not done.wait(STOP_CHECK_S):
                now = time.monotonic()
                if why := self.why(now, records(), ours(now)):
                    abort_self(stopped(why))
                    return

        thread = threading.Thread(target=watch, name="stop-conditions", daemon=True)
        thread.start()
        try:
            yield
        finally:
            done.set()
            thread.join(timeout=HEALTH_TIMEOUT_S * len(self.health.cluster.node_ids) + STOP_CHECK_S)
