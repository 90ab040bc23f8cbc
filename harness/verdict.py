"""A check's answer: passed, contract violated, or inconclusive, with its figures.

Jepsen's checkers answer `:valid?` true, false or `:unknown`; ours answer the same three, so
that a check that had nothing to judge can never look like a pass. A check collects two
lists while it reads the evidence: `problems` (what the cluster did wrong) and `missing`
(evidence the check needs and did not get, each with how to get it). Problems beat missing
evidence beats a pass, as Jepsen merges sub-checkers (`false` > `:unknown` > `true`); a
check for which thin evidence makes its problems unreliable (balance) decides that before it
looks for problems.

A verdict also names what it did not check (`unchecked`: certificates not verified, a
protocol not driven), so a pass says exactly what it covers.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Literal

from harness.errors import ContractViolation, Inconclusive

Outcome = Literal["passed", "violated", "inconclusive"]
Figures = dict[str, float | int | str]


@dataclass(frozen=True)
class Missing:
    """Evidence a check needs and did not get, and what would get it."""

    what: str
    how: str

    def __str__(self) -> str:
        return f"{self.what} (to get it: {self.how})"


@dataclass(frozen=True)
class Verdict:
    prop: str
    """the property judged (a `harness.properties.Property`), or several joined by commas (a
    soak's verdict over its windows)"""
    check: str
    outcome: Outcome
    explanation: str
    figures: Figures = field(default_factory=dict)
    unchecked: tuple[str, ...] = ()

    @property
    def passed(self) -> bool:
        return self.outcome == "passed"

    @property
    def title(self) -> str:
        return f"{self.prop} {self.check}"

    def noting(self, *unchecked: str) -> "Verdict":
        """The same verdict, naming more of what it did not check."""
        extra = tuple(u for u in unchecked if u not in self.unchecked)
        return replace(self, unchecked=self.unchecked + extra) if extra else self

    def summary(self) -> str:
        text = f"{self.title}: {self.explanation}"
        return f"{text} [not checked: {'; '.join(self.unchecked)}]" if self.unchecked else text

    def require(self) -> "Verdict":
        """Raise unless passed: `ContractViolation` or `Inconclusive`, each its own category."""
        if self.outcome == "violated":
            raise ContractViolation(self.summary(), self)
        if self.outcome == "inconclusive":
            raise Inconclusive(self.summary(), self)
        return self

    def describe(self) -> str:
        """A few lines for a terminal: the outcome and sentence, the figures, what was not
        checked."""
        heading = {"violated": "CONTRACT VIOLATED", "inconclusive": "INCONCLUSIVE",
                   "passed": "passed"}[self.outcome]
        lines = [f"{self.title}: {heading}", f"  {self.explanation}"]
        if self.figures:
            lines.append("  figures: " + ", ".join(f"{k}={v}" for k, v in self.figures.items()))
        if self.unchecked:
            lines.append("  not checked: " + "; ".join(self.unchecked))
        return "\n".join(lines)


def decide(prop: str, check: str, problems: Sequence[str], missing: Sequence[Missing],
           ok_text: str, figures: Figures) -> Verdict:
    """Problems make a violation; else missing evidence makes it inconclusive; else a pass."""
    if problems:
        return Verdict(prop, check, "violated", "; ".join(problems), figures)
    if missing:
        return inconclusive(prop, check, missing, figures)
    return Verdict(prop, check, "passed", ok_text, figures)


def inconclusive(prop: str, check: str, missing: Iterable[Missing], figures: Figures) -> Verdict:
    return Verdict(prop, check, "inconclusive",
                   "not enough evidence: " + "; ".join(str(m) for m in missing), figures)


def merge(verdicts: Sequence[Verdict]) -> Outcome:
    """The outcome of several verdicts: violated beats inconclusive beats passed."""
    outcomes = {v.outcome for v in verdicts}
    for worst in ("violated", "inconclusive"):
        if worst in outcomes:
            return worst  # type: ignore[return-value]
    return "passed"
