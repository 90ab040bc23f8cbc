"""Where the test suite's time goes: per-file totals and the slowest tests, from the JUnit XML
that `make test ARGS="--junitxml=FILE"` writes, as Markdown for reports/bench.md.

    python bench/durations.py FILE [--top N]

Measured, never asserted: a suite's speed is read here, not in a timed test.
"""

from __future__ import annotations

import argparse
import sys
import xml.etree.ElementTree as ET
from collections import defaultdict
from pathlib import Path


def cases(path: Path) -> list[tuple[str, str, float]]:
    """(file, test, seconds) for every test case in the report."""
    found = []
    for case in ET.parse(path).getroot().iter("testcase"):
        module = case.get("classname", "")
        found.append((module.replace(".", "/") + ".py", case.get("name", ""),
                      float(case.get("time", 0))))
    return found


def markdown(found: list[tuple[str, str, float]], top: int) -> str:
    by_file: dict[str, list[float]] = defaultdict(list)
    for file, _, seconds in found:
        by_file[file].append(seconds)
    total = sum(s for _, _, s in found)
    lines = [f"{len(found)} tests, {total / 60:.1f} min in tests", "",
             "| file | tests | seconds | share |", "|---|---:|---:|---:|"]
    for file, times in sorted(by_file.items(), key=lambda kv: -sum(kv[1])):
        lines.append(f"| {file} | {len(times)} | {sum(times):.0f} | {sum(times) / total:.0%} |")
    lines += ["", f"| slowest {top} | seconds |", "|---|---:|"]
    for file, name, seconds in sorted(found, key=lambda c: -c[2])[:top]:
        lines.append(f"| {file}::{name} | {seconds:.0f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("junit", type=Path, help="JUnit XML written by pytest --junitxml")
    parser.add_argument("--top", type=int, default=15, help="how many of the slowest tests to list")
    args = parser.parse_args(argv)
    if not args.junit.is_file():
        print(f"durations: {args.junit} does not exist", file=sys.stderr)
        return 2
    try:
        found = cases(args.junit)
    except ET.ParseError as e:
        print(f"durations: {args.junit} is not JUnit XML ({e})", file=sys.stderr)
        return 2
    print(markdown(found, args.top))
    return 0


if __name__ == "__main__":
    sys.exit(main())
