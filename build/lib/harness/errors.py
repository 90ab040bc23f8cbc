"""The ways a run can go wrong, kept apart because users act on them differently.

`HarnessError` is bad input or a broken environment: the harness could not test at all. Its
message is one sentence naming what is wrong; the CLI prints it and exits 2.
`ConfigurationError` is the harness failing to talk to a cluster that answered: a login
refused, a certificate that does not verify, an answer with no node identity. The cluster
was not judged; the topology needs fixing.

Verdicts end in one of two failures (Jepsen's `false` and `:unknown`): `ContractViolation`,
the cluster broke a promise; `Inconclusive`, the run lacked the evidence to judge it. Allure
files each under its own category (see `harness.report.CATEGORIES`); neither is a pass.
"""


class HarnessError(Exception):
    """Bad input or environment; the message is one sentence for the user."""


class ConfigurationError(HarnessError):
    """The cluster answered, but not as the topology says it would (login, TLS, identity)."""


class WorkersMissing(HarnessError):
    """The load workers a run asked for did not come, or came running another harness: known
    to be wrong for every load of the run, so the run stops on the first."""


class NotApplicable(Exception):
    """This cluster cannot be put to this test as described (a topology field it lacks, a
    kernel without netem): the pytest adapter skips the scenario with the sentence, which
    names what would enable it. Neither a verdict nor an error."""


class VerdictFailure(AssertionError):
    """A verdict that is not a pass, carrying the verdict itself (`harness.verdict.Verdict`):
    pytest shows it as the verdict, not as a crash with a traceback."""

    def __init__(self, message: str, verdict: object = None) -> None:
        super().__init__(message)
        self.verdict = verdict


class ContractViolation(VerdictFailure):
    """The cluster under test broke a property of the contract (C1-C14)."""


class Inconclusive(VerdictFailure):
    """A check lacked the evidence it needs; it says what was missing and how to get it."""
