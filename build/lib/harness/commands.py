"""Running the operator's command templates: node control and command-sourced evidence.

A template gets placeholders (`{node}`, `{host}`, and per use `{key}`, `{value}`,
`{version}`), each value shell-quoted. The command runs in its own process group with no
terminal and its output appended to a log file, never to the harness's pipes: a script that
starts a daemon inheriting its output cannot hang the run. A command that times out is
killed with its whole group; a timeout or a non-zero exit ends in one sentence naming what
was being done and the command's last output lines, secrets blanked.
"""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
from pathlib import Path

from harness.errors import HarnessError
from harness.secrets import redact

TAIL_LINES = 3


def render(template: str, values: dict[str, str], quote: bool = True) -> str:
    """`template` with each `{name}` replaced by its value (shell-quoted unless `quote` is
    off: for a request's path or a file glob)."""
    for name, value in values.items():
        template = template.replace("{" + name + "}", shlex.quote(value) if quote else value)
    return template


def run(template: str, values: dict[str, str], log: Path, timeout_s: float, what: str,
        cwd: Path | None = None) -> str:
    """Run the rendered command in `cwd` (the topology file's folder; None: the current
    directory); return what it printed (from the log). `what` names the action in error
    sentences, e.g. "'kill' of node1"."""
    command = render(template, values)
    with log.open("a") as out:
        out.write(f"$ {command}\n")
        out.flush()
        start = out.tell()
        proc = subprocess.Popen(command, shell=True, stdin=subprocess.DEVNULL, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True, cwd=cwd)
        try:
            code = proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            _scrub(log, start)
            raise HarnessError(f"{what} did not finish within {timeout_s:.0f} s "
                               f"({_tail(log, start)})") from None
    _scrub(log, start)
    if code != 0:
        raise HarnessError(f"{what} failed with exit {code} ({_tail(log, start)})")
    return _output(log, start)


def _scrub(log: Path, start: int) -> None:
    """Blank every secret this process has read out of what the command wrote: the log is
    attached to reports, and a command may echo a password it was given."""
    text = _output(log, start)
    clean = redact(text)
    if clean != text:
        with log.open("r+b") as f:
            f.seek(start)
            f.write(clean.encode())
            f.truncate()


def _output(log: Path, start: int) -> str:
    with log.open("rb") as f:
        f.seek(start)
        return f.read().decode(errors="replace")


def _tail(log: Path, start: int) -> str:
    """The last lines a command wrote to `log` from offset `start`, secrets blanked."""
    lines = _output(log, start).strip().splitlines()[-TAIL_LINES:]
    return "last output: " + " | ".join(lines) if lines else "no output"
