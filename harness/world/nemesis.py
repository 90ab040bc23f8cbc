"""A world's faults: what this cluster can inject, each injected as hard as the vocabulary
says and always healed (`harness.injector.FaultInjector`), on a cluster found healthy first.

What it cannot inject with this cluster is `NotApplicable`, naming the topology field that
would enable it, or what the kernel lacks: the pytest adapter makes it a skip.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

from harness.cluster import Cluster
from harness.errors import NotApplicable
from harness.evidence import State
from harness.fault_kinds import PEER_FAULTS, Fault
from harness.injector import FaultInjector, NetworkEngine
from harness.history.timeline import FaultEvent, FaultKind, FaultTimeline
from harness.thresholds import Thresholds
from harness.world.evidence import EvidenceReader
from harness.world.health import Health
from harness.world.reporter import Reporter


class Nemesis:
    def __init__(self, cluster: Cluster, thresholds: Thresholds, injector: FaultInjector,
                 network: NetworkEngine, health: Health, evidence: EvidenceReader, report: Reporter,
                 who: str) -> None:
        self.cluster, self.thresholds, self.injector = cluster, thresholds, injector
        self.network, self.health, self.evidence, self.report = network, health, evidence, report
        self.who = who

    @property
    def timeline(self) -> FaultTimeline:
        return self.injector.timeline

    def in_force(self) -> set[str]:
        return self.injector.in_force()

    def require(self, kind: FaultKind | str, link: str | None = None) -> None:
        """`NotApplicable`, saying why (the topology field that would enable it, or what the
        kernel lacks), if this cluster cannot inject `kind` (and heal it)."""
        kind = FaultKind(kind)
        if link is None:
            field = self.cluster.missing_for_fault(kind)
            if field:
                raise NotApplicable(f"{self.who} {kind} needs `{field}` in the topology")
            return
        engine = self.network.engine_for(kind)
        why = engine.missing(kind, link)
        if why:
            what = f"of a node from {link}" if kind in PEER_FAULTS else f"of a node's {link} link"
            raise NotApplicable(f"{self.who} {kind} {what} by {engine.name}: {why}")

    @contextmanager
    def fault(self, kind: FaultKind | str, node: str, link: str | None = None) -> Iterator[FaultEvent]:
        """`kind` on `node` (its `link`, for a network fault), as hard as the vocabulary says,
        in force while the body runs (it holds `fault_seconds`: `hold`); not on a cluster
        that is not healthy (`NotHealthy`)."""
        self.require(kind, link)
        self.health.steady(node)
        fault = Fault.of(kind, node, link)
        with self.report.step(f"fault injected: {fault}"):
            with self.injector.inject(fault, self.network) as event:
                for line in event.detail.get("applied", []):
                    self.report.attach(f"{event.detail['engine']} fault applied", line)
                yield event
        assert event.end_mono is not None
        self.report.attach("fault healed", f"{fault} healed after "
                                           f"{event.end_mono - event.start_mono:.2f} s")

    def store_link(self, state: State) -> str | None:
        """The link to fault for a node's connection to the store: Toxiproxy's proxy link
        (`store_link`), or for the kernel engine the link the cluster maps to the store."""
        if self.network.name == "toxiproxy":
            return state.store_link
        return state.store_link or "store"

    def require_store_cut(self, state: State) -> None:
        """`NotApplicable` unless a node can be cut off the shared store: by the network
        engine on the store link, or by the operator's commands."""
        if state.store_cut is not None:
            return
        link = self.store_link(state)
        if link is None:
            raise NotApplicable(f"{self.who} store cut needs `evidence.state.store_link` (a "
                                "Toxiproxy link), `evidence.state.store_address` (kernel faults) "
                                "or `evidence.state.store_cut` (commands) in the topology")
        self.require(FaultKind.CUT, link=link)

    @contextmanager
    def store_cut(self, node: str, state: State) -> Iterator[FaultEvent]:
        """Cut `node` off the shared store: by the network engine on its store link, or else
        by the operator's commands (`state.store_cut`)."""
        link = self.store_link(state)
        if link is not None and (state.store_cut is None or not self.network.missing(FaultKind.CUT, link)):
            with self.fault(FaultKind.CUT, node, link=link) as event:
                yield event
            return
        assert state.store_cut is not None
        cut = state.store_cut
        self.health.steady(node)
        with self.report.step(f"fault injected: {node} cut off the store (evidence.state.store_cut)"):
            with self.injector.by_commands(
                    Fault.of(FaultKind.CUT, node, "store"),
                    lambda: self.evidence.act(cut.make, node),
                    lambda: self.evidence.act(cut.undo, node)) as event:
                yield event

    def hold(self, seconds: float | None = None) -> None:
        """Keep the fault in force (`--fault-seconds`, or `seconds`)."""
        time.sleep(self.thresholds.fault_seconds if seconds is None else seconds)

    def spread(self, rounds: int) -> Iterator[int]:
        """`rounds` moments spread over `fault_seconds` (the body of each runs, then the
        pause to the next), so that what the cluster does later in a fault is seen too."""
        step = self.thresholds.fault_seconds / rounds
        start = time.monotonic()
        for i in range(rounds):
            yield i
            time.sleep(max(0.0, start + (i + 1) * step - time.monotonic()))

    def settle_membership(self) -> None:
        """Give peers time to see a node's changed state before relying on it."""
        time.sleep(self.thresholds.membership_settle)
