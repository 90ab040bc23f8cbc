"""What program a command line would run, found as the shell would find it: a guess.

The probe asks, before anything runs, whether each of the operator's command templates could
run here. It can only guess: the command goes through `sh -c`, and what it needs may appear
on the way (a `cd`, a PATH the script sets, a host at the other end of `ssh`). So the finding
is a warning, never a stop. To guess well it reads the line as the shell does: environment
variables and `~` expanded, `VAR=value` prefixes and wrappers (`env`, `sudo`, `nohup`,
`timeout`, ...) skipped, `bash FILE` / `sh FILE` followed to the file, `sh -c '...'` read
inside, `ssh HOST ...` left to the remote host. Pure functions of the line, the
environment and two directories, so every form is unit-tested.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
from collections.abc import Mapping
from pathlib import Path

SHELLS = {"sh", "bash", "dash", "zsh", "ksh"}
BUILTINS = {"cd", "echo", "printf", "test", "[", "true", "false", ":", "exit", "kill", "set",
            "export", "unset", "wait", "sleep", "read", "eval", "trap", "shift", "umask"}
SOURCING = {"source", "."}
REMOTE = {"ssh"}
# Wrappers that run the rest of the line, with the options of theirs that take a value.
WRAPPERS: dict[str, set[str]] = {
    "env": {"-u", "--unset", "-C", "--chdir", "-S", "--split-string"},
    "sudo": {"-u", "--user", "-g", "--group", "-C", "-D", "--chdir", "-h", "--host", "-p",
             "--prompt", "-r", "--role", "-t", "--type", "-U", "--other-user", "-T"},
    "doas": {"-u", "-C"},
    "nohup": set(), "exec": {"-a"}, "command": set(), "builtin": set(), "setsid": set(),
    "nice": {"-n", "--adjustment"}, "ionice": {"-c", "-n", "-p"}, "stdbuf": {"-i", "-o", "-e"},
    "timeout": {"-s", "--signal", "-k", "--kill-after"}, "time": set(), "chronic": set(),
}
TAKES_OPERAND = {"timeout"}  # the duration before the command
SEPARATORS = {";", "&&", "||", "|", "&", "(", ")", ";;", "|&", "\n"}
REDIRECTIONS = {">", ">>", "<", "<<", ">&", "<&", "&>", "&>>", "<>", ">|"}
ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")
VARIABLE = re.compile(r"\$(?:\{([A-Za-z_][A-Za-z0-9_]*)\}|([A-Za-z_][A-Za-z0-9_]*))")


def expand(word: str, env: Mapping[str, str]) -> tuple[str, list[str]]:
    """`word` with `$VAR`, `${VAR}` and a leading `~` expanded as the shell would (an unset
    variable expands to nothing); also the names that were unset."""
    unset: list[str] = []

    def value(found: re.Match[str]) -> str:
        name = found.group(1) or found.group(2)
        if name not in env:
            unset.append(name)
        return env.get(name, "")

    expanded = VARIABLE.sub(value, word)
    if expanded == "~" or expanded.startswith("~/"):
        expanded = env.get("HOME", "~") + expanded[1:]
    return expanded, unset


def simple_commands(line: str) -> list[list[str]]:
    """The words of each simple command of `line` (split at `;`, `&&`, `|`, ...), without
    redirections."""
    lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    commands: list[list[str]] = [[]]
    tokens = iter(lexer)
    for token in tokens:
        if token in SEPARATORS:
            commands.append([])
        elif token in REDIRECTIONS:
            next(tokens, None)
        else:
            commands[-1].append(token)
    return [c for c in commands if c]


def program_of(words: list[str]) -> tuple[str, list[str]] | None:
    """The program a simple command runs and its arguments, past assignments and wrappers."""
    i = 0
    while i < len(words):
        word = words[i]
        if ASSIGNMENT.match(word):
            i += 1
            continue
        if word not in WRAPPERS:
            return word, words[i + 1:]
        takes_value = WRAPPERS[word]
        i += 1
        while i < len(words) and (words[i].startswith("-") or (word == "env" and ASSIGNMENT.match(words[i]))):
            if words[i] == "--":
                i += 1
                break
            i += 2 if words[i] in takes_value else 1
        if word in TAKES_OPERAND:
            i += 1
    return None


def guess(line: str, env: Mapping[str, str], cwd: Path, elsewhere: Path | None = None) -> list[str]:
    """Why `line` might not run here, one clause per program that cannot be found (empty
    when every program it names is there, or runs on another host). `cwd` is where commands
    run (the topology file's folder); `elsewhere` a folder named when a relative path is
    found only there (the current directory, a common slip)."""
    try:
        commands = simple_commands(line)
    except ValueError as e:
        return [f"does not parse as a shell command ({e})"]
    doubts: list[str] = []
    for words in commands:
        found = program_of(words)
        if found is None:
            continue
        program, args = found
        if program in REMOTE:
            doubts += _program(program, env, cwd, elsewhere)
            continue  # its words run on the remote host
        if program in SHELLS:
            if "-c" in args:
                inner = args[args.index("-c") + 1:]
                doubts += guess(inner[0], env, cwd, elsewhere) if inner else []
            elif script := next((a for a in args if not a.startswith("-")), None):
                doubts += _file(script, env, cwd, elsewhere, executable=False)
            continue
        if program == "cd" and args:  # later relative paths start from there
            target, _ = expand(args[0], env)
            cwd = cwd / target
            continue
        if program in SOURCING:
            doubts += _file(args[0], env, cwd, elsewhere, executable=False) if args else []
            continue
        if program not in BUILTINS:
            doubts += _program(program, env, cwd, elsewhere)
    return doubts


def _program(word: str, env: Mapping[str, str], cwd: Path, elsewhere: Path | None) -> list[str]:
    expanded, _ = expand(word, env)
    if "/" in expanded:
        return _file(word, env, cwd, elsewhere, executable=True)
    if shutil.which(expanded, path=env.get("PATH", os.defpath)):
        return []
    return [f"`{word}` is not on PATH"]


def _file(word: str, env: Mapping[str, str], cwd: Path, elsewhere: Path | None,
          executable: bool) -> list[str]:
    expanded, unset = expand(word, env)
    path = Path(expanded)
    shown = f"`{word}`" if expanded == word else f"`{word}` (here `{expanded}`)"
    if unset:
        shown += f", with {', '.join('$' + n for n in unset)} not set in this environment,"
    where = path if path.is_absolute() else cwd / path
    if where.is_file():
        if executable and not os.access(where, os.X_OK):
            return [f"{shown} is not executable"]
        return []
    if not path.is_absolute() and elsewhere is not None and (elsewhere / path).is_file():
        return [f"{shown} is not in {cwd}, where commands run (the topology file's folder), "
                f"but in {elsewhere}: write it relative to the topology file, or absolute"]
    return [f"{shown} does not exist"]
