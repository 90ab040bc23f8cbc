"""Every bound a check applies, and the load a scenario drives: each one a command-line option.

Declared once, with its help text, so the pytest options (`harness.plugin`), the options table of docs/running.md (scripts/docs.py)
and the checks' bindings (`harness.judge`) all read the same field; nothing is buried in a test.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any


def _bound(default: Any, help_text: str) -> Any:
    return field(default=default, metadata={"help": help_text})


@dataclass(frozen=True)
class Thresholds:
    error_budget: float = _bound(
        0.01, "share of requests that may fail during a fault window (or in a step of a "
              "saturation search)")
    max_failover_gap: float = _bound(
        3.0, "longest time in seconds with no successful answer during failover")
    max_failover_wait: float = _bound(
        1.5, "longest a request in flight during a fault may wait for the faulted node to come "
             "back and answer it (a request a peer served is never judged by its latency)")
    max_failover_latency: float | None = _bound(
        None, "if set, the slowest answer (and p99) in seconds allowed while a node fails, "
              "whoever served it")
    min_victim_requests: int = _bound(
        3, "requests the victim must serve in the second before its fault, else the verdict "
           "is inconclusive")
    min_window_requests: int = _bound(
        20, "requests that must overlap a fault window, else inconclusive")
    balance_tolerance: float = _bound(
        0.25, "largest relative deviation of a node's share from its fair share")
    balance_alpha: float = _bound(0.001, "significance of the chi-square test of the load split")
    rejoin_bound: float = _bound(
        5.0, "seconds a restarted node may take to serve through the entry again")
    rejoin_tolerance: float = _bound(
        0.35, "largest relative deviation of a rejoined node's share from its fair share, "
              "counted from the moment it is stably back")
    rejoin_load_cap: float = _bound(
        60.0, "longest the rejoin scenario's load runs, waiting for the node to be back for "
              "the rejoin bound with enough answers to judge its share")
    replication_bound: float = _bound(
        2.0, "seconds a replicated package may take to reach every node")
    min_scale_ratio: float = _bound(
        1.2, "saturated throughput with N+1 nodes over N nodes must reach this")
    step_users: int = _bound(
        10, "users a saturation search (C13, harness scalability) adds at each step")
    step_rate: float = _bound(
        4.0, "requests per second each user of a saturation search offers; keep it under "
             "1 / the service's unloaded latency, or the first step is past saturation")
    step_seconds: float = _bound(
        1.5, "length of a step of a saturation search (judged on its last two thirds)")
    max_steps: int = _bound(
        15, "steps a saturation search takes at most; a cluster that serves the last one in "
            "full was not saturated (inconclusive)")
    max_step_p95: float = _bound(
        0.5, "a step whose p95 latency in seconds passes this is past saturation")
    min_served_ratio: float = _bound(
        0.8, "a step that serves less than this share of the load it offers is past saturation "
             "(clearly below 1: unloaded, users keep their rate to within a few percent)")
    fault_seconds: float = _bound(2.0, "how long each injected fault lasts")
    max_faulted_nodes: int = _bound(
        1, "the most nodes one run may have faulted at once, counting nodes found out of service "
           "for other reasons (the blast radius); a fault past it is not injected")
    membership_settle: float = _bound(
        0.75, "seconds for peers to see a node's changed state (package, quiesce)")
    load_rate: float = _bound(20.0, "requests per second per simulated user during steady load")
    load_users: int = _bound(4, "simulated users during steady load")
    load_processes: int = _bound(
        1, "Locust processes the steady load's users are shared over (one per core uses them all)")
    load_workers: int = _bound(
        0, "load workers on other machines the loads run in (Locust's distributed mode, this "
           "machine the master; `harness worker --master HOST:PORT` there, or the topology's "
           "load.workers started over SSH); 0: local processes")

    @staticmethod
    def option(name: str) -> str:
        return "--" + name.replace("_", "-")

    @classmethod
    def options(cls, only: tuple[str, ...] | None = None) -> list[tuple[str, type, Any, str]]:
        """(option, type, default, help) of every field (or those named), for a parser."""
        return [(cls.option(f.name), float if f.default is None else type(f.default), f.default,
                 f.metadata["help"]) for f in fields(cls) if only is None or f.name in only]

    @staticmethod
    def search_fields() -> tuple[str, ...]:
        """What a saturation search and C13's verdict read: the options `harness scalability`
        shares with the scenario."""
        return ("step_users", "step_rate", "step_seconds", "max_steps", "max_step_p95",
                "min_served_ratio", "error_budget", "min_scale_ratio", "rejoin_bound",
                "load_processes", "load_workers")
