"""The probe's guess at whether a control command could run here, on the forms operators
write: environment variables in paths, `~`, wrappers (`sudo`, `env`, `timeout`, `nohup`),
`bash FILE`, `sh -c`, `ssh HOST ...`, a script relative to the topology file. A program
that is there raises no doubt; one that is not is named, with what the line expanded to."""

import os
from pathlib import Path

import pytest

from harness.commandline import expand, guess, program_of, simple_commands


@pytest.fixture
def place(tmp_path):
    """A cluster home with an executable control script, a topology folder beside it, and
    the environment a user's shell would have."""
    home = tmp_path / "cluster"
    home.mkdir()
    script = home / "ctl.sh"
    script.write_text("#!/bin/sh\n")
    script.chmod(0o755)
    (tmp_path / "plain.sh").write_text("#!/bin/sh\n")
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "CLUSTER_HOME": str(home)}
    return env, tmp_path, home


@pytest.mark.parametrize("line", [
    "bash $CLUSTER_HOME/ctl.sh kill node1",
    "bash ${CLUSTER_HOME}/ctl.sh kill node1",
    "$CLUSTER_HOME/ctl.sh kill node1",
    "sh ~/cluster/ctl.sh kill node1",
    "~/cluster/ctl.sh kill node1",
    "sudo -n -u operator $CLUSTER_HOME/ctl.sh kill node1",
    "sudo --preserve-env $CLUSTER_HOME/ctl.sh kill node1",
    "env X=1 Y=two cluster/ctl.sh kill node1",
    "X=1 nohup cluster/ctl.sh restart node1 >/dev/null 2>&1 &",
    "timeout -s KILL 30 cluster/ctl.sh kill node1",
    "ssh -o BatchMode=yes node1.example /opt/elsewhere/ctl.sh kill node1",
    "sh -c 'cd cluster && ./ctl.sh kill node1'",
    "docker kill --signal KILL cluster-node1",
    "cd cluster; ./ctl.sh kill node1",
])
def test_the_forms_operators_write_raise_no_doubt_when_the_program_is_there(place, line):
    env, cwd, _ = place
    assert guess(line, env, cwd) == []


def test_an_unset_variable_is_named_with_what_the_path_became(place):
    env, cwd, _ = place
    assert guess("bash $NOT_SET/ctl.sh kill node1", env, cwd) == [
        "`$NOT_SET/ctl.sh` (here `/ctl.sh`), with $NOT_SET not set in this environment, "
        "does not exist"]


def test_a_missing_program_is_named(place):
    env, cwd, _ = place
    assert guess("sudo clusterctl kill node1", env, cwd) == ["`clusterctl` is not on PATH"]
    assert guess("./plain.sh kill", env, cwd) == ["`./plain.sh` is not executable"]


def test_a_script_relative_to_the_topology_file_is_found_there(place):
    """Commands run in the topology file's folder; a script written relative to the current
    directory instead is found there and said so."""
    env, cwd, home = place
    assert guess("./ctl.sh kill node1", env, home) == []
    doubts = guess("cluster/ctl.sh kill node1", env, home, elsewhere=cwd)
    assert len(doubts) == 1 and "where commands run (the topology file's folder), but in" in doubts[0]


def test_the_shells_words_are_read_as_the_shell_reads_them():
    assert simple_commands("a 1 && b 2 | c >out 2>&1; d") == [["a", "1"], ["b", "2"], ["c", "2"], ["d"]]
    assert program_of(["A=1", "sudo", "-u", "x", "env", "B=2", "timeout", "5", "run", "it"]) == ("run", ["it"])
    assert expand("${A}/$B/~", {"A": "x"}) == ("x//~", ["B"])
    assert guess("bash 'unclosed", {}, Path("/"))[0].startswith("does not parse")
