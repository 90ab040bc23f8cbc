"""What a soak runs, and the command-line options that say so, declared once.

`harness soak` spells them `--minutes`, `--seed`, ...; pytest spells them `--soak-minutes`,
`--soak-seed`, ...; both read the same table (`SOAK_OPTIONS`), so a default or a help text
lives in one place. What differs from the scenarios' options has another name: a soak's faults
last `--mean-fault-seconds` on average (a scenario's, `--fault-seconds` exactly), its load is
`--total-rate` requests a second (a scenario's, `--load-rate` per user).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
import dataclasses
from dataclasses import dataclass
from typing import Any

from harness import nemesis
from harness.errors import HarnessError
from harness.fault_kinds import DEFAULT_NEMESIS, NEMESES
from harness.history.timeline import FaultKind
from harness.nemesis import POLICIES, PlannedFault, Policy


@dataclass(frozen=True)
class SoakPlan:
    """What `harness soak` and `pytest -m soak --soak-minutes M` run; its defaults are the
    options' (`SOAK_OPTIONS`)."""

    seed: int
    minutes: float = 30.0
    nemesis: tuple[FaultKind, ...] = ()
    """the faults to draw from; none: those of `harness.fault_kinds.DEFAULT_NEMESIS` the cluster can inject"""
    policy: Policy = "serial"
    mean_fault_seconds: float = 4.0
    """how long a fault lasts on average (the scenarios' --fault-seconds is a fixed length)"""
    quiet_seconds: float = 8.0
    max_faulted_nodes: int | None = None
    """the blast radius: the most nodes faulted at once (None: all but one)"""
    total_rate: float = 200.0
    """HTTP and HTTPS requests per second through the entry, all users together (the
    scenarios' --load-rate is each user's); FTP, SMTP and orders add a few"""
    keep_going: bool = False
    keep_logs: bool = False

    @classmethod
    def from_options(cls, values: Mapping[str, Any], prefix: str = "--",
                     keep_logs: bool = False) -> "SoakPlan":
        """A plan from parsed options (`option_values`): the seed drawn if not given; bad
        input is one sentence naming the option as it is spelt (`prefix`)."""
        kinds = tuple(k for k in (values.get("nemesis") or "").split(",") if k)
        if unknown := nemesis.unknown_nemeses(kinds):
            raise HarnessError(f"{prefix}nemesis {','.join(unknown)}: no such fault; choose from "
                               f"{', '.join(NEMESES)}")
        seed = values.get("seed")
        fields_ = {k: v for k, v in values.items() if k not in ("nemesis", "seed") and v is not None}
        plan = cls(seed=random_seed() if seed is None else seed,
                   nemesis=tuple(FaultKind(k) for k in kinds), keep_logs=keep_logs, **fields_)
        if problems := plan.problems(prefix):
            raise HarnessError(problems[0])
        return plan

    @property
    def duration_s(self) -> float:
        return self.minutes * 60

    def schedule(self, nodes: list[str]) -> list[PlannedFault]:
        return nemesis.schedule(self.seed, self.nemesis or DEFAULT_NEMESIS, nodes,
                                self.duration_s, self.mean_fault_seconds, self.quiet_seconds,
                                self.policy, self.max_faulted_nodes)

    def blast_radius(self, nodes: int) -> int:
        """The most of `nodes` nodes faulted at once: the plan's, else all but one."""
        return self.max_faulted_nodes if self.max_faulted_nodes is not None else nodes - 1

    def problems(self, prefix: str = "--") -> list[str]:
        """What is wrong with this plan, one sentence each (bad input); `prefix`: how the
        options are spelt (`--soak-` in pytest)."""
        out = []
        if self.minutes <= 0:
            out.append(f"{prefix}minutes must be more than 0, not {self.minutes:g}")
        if self.total_rate <= 0:
            out.append(f"{prefix}total-rate must be more than 0, not {self.total_rate:g}")
        if self.max_faulted_nodes is not None and self.max_faulted_nodes < 1:
            out.append(f"{prefix}max-faulted-nodes must be at least 1, not {self.max_faulted_nodes}: "
                       "no fault could run")
        if self.mean_fault_seconds <= 0 or self.quiet_seconds < 0:
            out.append(f"{prefix}mean-fault-seconds must be more than 0 and {prefix}quiet-seconds not less")
        return out


def random_seed() -> int:
    return random.SystemRandom().randrange(1, 2**31)


@dataclass(frozen=True)
class SoakOption:
    """One option of the soak: the plan's field it sets, and how a parser takes it."""

    field: str
    help: str
    kwargs: dict[str, Any]
    """argparse's; without a `default`, the plan's field default is the option's"""
    prefixed: bool = True
    """pytest spells it `--soak-<field>`; else as `harness soak` does (`--keep-going`)"""

    def flag(self, prefix: str) -> str:
        return (prefix if self.prefixed else "--") + self.field.replace("_", "-")

    def dest(self, prefix: str) -> str:
        return self.flag(prefix).lstrip("-").replace("-", "_")


SOAK_OPTIONS: tuple[SoakOption, ...] = (
    SoakOption("minutes", "how long the soak runs (default %(default)s)",
               {"type": float, "metavar": "M"}),
    SoakOption("seed", "the nemesis schedule's seed (default: drawn, and printed; the same seed "
                       "replays the same schedule)", {"type": int, "default": None, "metavar": "S"}),
    SoakOption("nemesis", f"faults to draw from: {', '.join(NEMESES)} (default: "
                          f"{','.join(DEFAULT_NEMESIS)}, those of them the cluster can inject)",
               {"default": None, "metavar": "KIND,..."}),
    SoakOption("policy", "one fault at a time with quiet periods between (default), or faults "
                         "that may overlap on different nodes",
               {"choices": POLICIES}),
    SoakOption("mean_fault_seconds", "how long a fault lasts on average (default %(default)s)",
               {"type": float, "metavar": "X"}),
    SoakOption("max_faulted_nodes", "the most nodes faulted at once, counting nodes found out "
                                    "of service (the blast radius; default: all but one)",
               {"type": int, "metavar": "N"}),
    SoakOption("quiet_seconds", "least quiet time after a fault (default %(default)s)",
               {"type": float, "metavar": "X"}),
    SoakOption("total_rate", "HTTP and HTTPS requests per second through the entry, all users "
                             "together (default %(default)s)",
               {"type": float, "metavar": "R"}),
    SoakOption("keep_going", "go on after a violating window, to find more (the run still fails)",
               {"action": "store_true"}, prefixed=False),
)


def add_soak_options(add: Callable[..., Any], prefix: str = "--",
                     defaults: Mapping[str, Any] | None = None, helps: Mapping[str, str] | None = None) -> None:
    """Declare every soak option with `add` (argparse's `add_argument`, pytest's `addoption`),
    spelt with `prefix`; `defaults` and `helps` change a field's where the entry differs."""
    plan_defaults = {f.name: f.default for f in dataclasses.fields(SoakPlan)
                     if f.default is not dataclasses.MISSING}
    for option in SOAK_OPTIONS:
        kwargs = {"default": plan_defaults.get(option.field), **option.kwargs}
        if defaults and option.field in defaults:
            kwargs["default"] = defaults[option.field]
        text = (helps or {}).get(option.field, option.help)
        add(option.flag(prefix), dest=option.dest(prefix),
            help=text.replace("%(default)s", str(kwargs.get("default"))), **kwargs)


def option_values(namespace: Any, prefix: str = "--") -> dict[str, Any]:
    """The plan's fields as parsed (`add_soak_options`) from `namespace`."""
    return {o.field: getattr(namespace, o.dest(prefix)) for o in SOAK_OPTIONS}
