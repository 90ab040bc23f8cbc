"""`clusterproof run --topology FILE`: the contract judged on one's own cluster, from any folder.

It runs the scenarios the package ships (`pytest --pyargs harness.scenarios`, so pytest's own
options work too) on the properties the topology claims; the plugin probes the topology
against the live cluster first and stops on what is known to be wrong. It writes Allure
results and, where Allure's command line is installed, the HTML report, only where it is
told (by default `./reports/` of the folder it runs in), and exits with the contract's
answer, as Schemathesis and k6 do, and as Jepsen's valid / invalid / unknown:

    0  every claimed property that ran passed
    1  a contract violated
    2  bad input or a configuration error (a topology the probe found wrong, a refused login)
    3  inconclusive: no violation, but not enough evidence for every claim (or nothing ran)
    4  the harness could not run a scenario (an infrastructure error, its traceback printed)
    5  aborted: by `harness abort`, SIGTERM or the abort file, or by a stop condition (every
       fault in force healed, the load stopped)
"""

from __future__ import annotations

import shutil
import sys
from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Literal

import pytest

from harness import report, safety
from harness.errors import ConfigurationError, ContractViolation, Inconclusive

Ending = Literal["passed", "violated", "inconclusive", "configuration error", "harness error",
                 "skipped"]
EXIT = {"passed": 0, "violated": 1, "configuration error": 2, "inconclusive": 3,
        "harness error": 4, "aborted": 5}
SCENARIOS = "harness.scenarios"


def exit_code(endings: Iterable[Ending], pytest_code: int = 0) -> int:
    """The run's exit code from its scenarios' endings: a configuration error beats a
    violation beats a harness error beats inconclusive beats a pass; a run that judged nothing
    is inconclusive. pytest stopping the session (the probe's problems, workers that never
    came: its exit 2) or refusing its options (4) is a configuration error."""
    if pytest_code in (pytest.ExitCode.INTERRUPTED, pytest.ExitCode.USAGE_ERROR):
        return EXIT["configuration error"]
    seen = Counter(endings)
    for worst in ("configuration error", "violated", "harness error", "inconclusive"):
        if seen[worst]:
            return EXIT[worst]
    return EXIT["passed"] if seen["passed"] else EXIT["inconclusive"]


class Endings:
    """A pytest plugin that tells each scenario's ending by the exception that ended it."""

    def __init__(self) -> None:
        self.endings: dict[str, Ending] = {}

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo[None]
                                  ) -> Iterator[pytest.TestReport]:
        report = yield
        if call.when == "call" or report.outcome != "passed":
            self.endings[item.nodeid] = ending(report, call)
        return report


def ending(report: pytest.TestReport, call: pytest.CallInfo[None]) -> Ending:
    if report.skipped:
        return "skipped"
    if report.passed:
        return "passed"
    failure = call.excinfo.value if call.excinfo is not None else None
    if isinstance(failure, ContractViolation):
        return "violated"
    if isinstance(failure, Inconclusive):
        return "inconclusive"
    if isinstance(failure, ConfigurationError):
        return "configuration error"
    return "harness error"


def run(topology: Path, pytest_args: list[str], results: Path, html: Path | None,
        allow_remote: bool) -> int:
    """The scenarios on the topology's claims; the report; the exit code."""
    endings = Endings()
    code = pytest.main(["--pyargs", SCENARIOS, "--topology", str(topology),
                        *(["--allow-remote-targets"] if allow_remote else []),
                        "-p", "no:cacheprovider", f"--alluredir={results}", "-rfEs",
                        # the plugin is imported already (by this command): nothing to rewrite
                        "-W", "ignore::pytest.PytestAssertRewriteWarning", *pytest_args],
                       plugins=[endings])
    answer = EXIT["aborted"] if safety.abort_reason() else exit_code(endings.endings.values(), int(code))
    tally = Counter(endings.endings.values())
    print(f"clusterproof: {', '.join(f'{n} {e}' for e, n in tally.items()) or 'nothing ran'}; "
          f"exit {answer} ({_meaning(answer)})", file=sys.stderr)
    if html is not None:
        _report(results, html)
    return answer


def _meaning(code: int) -> str:
    return {0: "every claimed property passed", 1: "a contract violated",
            2: "bad input or a configuration error", 3: "inconclusive: not enough evidence",
            4: "the harness could not run a scenario",
            5: f"aborted: {safety.abort_reason()}"}[code]


def _report(results: Path, html: Path) -> None:
    """The HTML report, where Allure's command line is installed; else where the results are."""
    if shutil.which("allure") is None or not results.is_dir():
        print(f"clusterproof: Allure results in {results} (the HTML report needs Allure's command "
              f"line: `allure generate {results}`)", file=sys.stderr)
        return
    index = report.write_html(results, html)
    print(f"clusterproof: report at {index.resolve()}", file=sys.stderr)

