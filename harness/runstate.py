"""Where the harness keeps the state of its runs, and how it names a process for good.

Every run's files (slots, pid lists, kernel fault journals, `harness up`'s pid) live under
one state root, so a later run or `harness down` can find what a killed one left. A process
is named by its pid and start time together: a pid alone is reused, and some programs
(Redis) overwrite the environment label with their process title.
"""

from __future__ import annotations

import os
from pathlib import Path

STATE_ROOT = Path(os.environ.get("HARNESS_STATE_DIR", "/tmp/harness-runs"))
LABEL_VAR = "HARNESS_RUN"
"""The run's label in the environment of every process it starts, for people reading `ps e`."""
KEEP_VAR = "HARNESS_KEEP_RUN_DIR"
"""Set (by `--keep-run-dir`) to keep a finished run's directory until the next run starts."""


def start_time(pid: int) -> str | None:
    """The process's start time in clock ticks: with the pid, it names one process for good.
    None for a process that is gone, or has ended and waits for its parent to read its exit
    (a zombie: it runs nothing and holds nothing any more)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()
    return None if fields[0] == "Z" else fields[19]


def owner_tag(pid: int | None = None) -> str:
    """A process (this one by default) as the owner of something it leaves: pid.start time."""
    pid = os.getpid() if pid is None else pid
    return f"{pid}.{start_time(pid)}"


def owner_alive(owner: str) -> bool:
    """Is the process an `owner_tag` names still running?"""
    pid, _, started = owner.partition(".")
    return pid.isdigit() and start_time(int(pid)) == started


def write_whole(path: Path, text: str) -> None:
    """Write a file other processes wait for (`harness up`'s endpoints and topology) beside it
    and rename it into place: whoever sees it appear reads it whole, never the empty file a
    plain write shows first (a test polling for the topology read it empty)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    partial.write_text(text)
    partial.replace(path)
