"""The two ways a run can go wrong, kept apart because users act on them differently.

`HarnessError` is bad input or a broken environment: the harness could not test at all. Its
message is one sentence naming what is wrong; the CLI prints it and exits 2. A
`ContractViolation` is the verdict that the cluster broke a promise; Allure files it under
"contract violated", everything else under "harness or infrastructure error".
"""


class HarnessError(Exception):
    """Bad input or environment; the message is one sentence for the user."""


class ContractViolation(AssertionError):
    """The cluster under test broke a property of the contract (C1-C14)."""
