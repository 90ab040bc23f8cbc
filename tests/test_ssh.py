"""control.ssh as pure code: the argv each command becomes, the actions a pidfile gives, the
topology fields, and the sentences ssh's own complaints turn into. The real thing (sshd on
namespace hosts) is tests/test_hosts.py and the zoo's hosts-ssh member."""

import shlex
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from harness.config import load_topology, parse_topology
from harness.errors import HarnessError
from harness.kernel import Place, over_ssh
from harness.ssh import SshControl, explain

SSH = SshControl(user="root", key_file=Path("/keys/id"), known_hosts=Path("/keys/known"),
                 pidfile="/run/{node}.pid", start="/opt/is/start {node}")


def far_words(argv: list[str]) -> list[str]:
    """The words the far shell runs: ssh joins what follows `--` with spaces; the far shell
    splits that line again."""
    return shlex.split(" ".join(argv[argv.index("--") + 1:]))


@given(st.lists(st.text(st.characters(codec="utf-8", exclude_characters="\0"), min_size=0), min_size=1))
def test_every_word_of_a_command_arrives_whole(words):
    assert far_words(SSH.argv("198.18.14.11", shlex.join(words))) == words


def test_sudo_runs_the_whole_line_as_root_without_asking_for_a_password():
    line = "iptables -w 5 -S INPUT | grep -q 'harness probe'"
    words = far_words(SSH.model_copy(update={"sudo": True}).argv("h", line))
    assert words == ["sudo", "-n", "sh", "-c", line]


def test_host_keys_are_checked_against_the_named_file_only_and_no_password_is_asked():
    argv = SSH.argv("198.18.14.11", "true")
    options = dict(argv[i + 1].split("=", 1) for i, a in enumerate(argv) if a == "-o")
    assert options["StrictHostKeyChecking"] == "yes" and options["BatchMode"] == "yes"
    assert options["UserKnownHostsFile"] == "/keys/known" and options["GlobalKnownHostsFile"] == "/dev/null"
    assert options["IdentityFile"] == "/keys/id" and argv[argv.index("--") - 1] == "root@198.18.14.11"
    assert argv[:3] == ["ssh", "-F", "/dev/null"]  # no ~/.ssh/config to loosen any of it


def test_a_bastion_is_checked_against_the_same_known_hosts_file():
    argv = SshControl(agent=True, known_hosts=Path("/k"), proxy_jump="ops@bastion:2222",
                      host="10.0.0.5").argv("ignored", "true")
    proxy = next(a for a in argv if a.startswith("ProxyCommand="))
    hop = shlex.split(proxy.removeprefix("ProxyCommand="))
    assert hop[-3:] == ["-W", "%h:%p", "ssh://ops@bastion:2222"] and "UserKnownHostsFile=/k" in hop
    assert argv[argv.index("--") - 1] == "10.0.0.5"


def test_the_pidfile_and_start_command_make_every_node_action():
    assert SSH.action("kill") == "kill -s KILL \"$(cat '/run/{node}.pid')\""
    assert SSH.action("pause").startswith("kill -s STOP") and SSH.action("resume").startswith("kill -s CONT")
    assert SSH.action("restart").endswith("; /opt/is/start {node}")
    assert SshControl(agent=True, known_hosts=Path("/k")).action("kill") is None


def test_a_node_action_over_ssh_is_one_line_with_the_node_filled_in():
    topology = parse_topology({"entry": {"http": "http://127.0.0.1:1"}, "nodes": [
        {"id": "n1", "endpoints": {"http": "http://127.0.0.1:5555"},
         "control": {"ssh": SSH.model_dump(mode="json"), "restart": "systemctl restart is"}}]})
    node = topology.node("n1")
    assert far_words(shlex.split(node.control_line("kill"))) == ["kill", "-s", "KILL", "$(cat '/run/n1.pid')"]
    assert far_words(shlex.split(node.control_line("restart"))) == ["systemctl", "restart", "is"]


def test_kernel_fault_commands_on_a_node_host_go_over_ssh_word_for_word():
    place = over_ssh(SSH, "198.18.14.12", "node2")
    command = ["iptables", "-w", "5", "-I", "INPUT", "1", "-m", "comment", "--comment", "a b", "-j", "DROP"]
    assert far_words(place.argv(command)) == command
    assert not place.local and Place("here").local
    assert "node2's host root@198.18.14.12" in place.name


@pytest.mark.parametrize(("ssh", "wrong"), [
    ({"known_hosts": "/k"}, "give one of key_file, agent: true"),
    ({"known_hosts": "/k", "agent": True, "key_file": "/id"}, "give one of key_file, agent: true"),
    ({"agent": True}, "'nodes.0.control.ssh.known_hosts' is required"),
    ({"agent": True, "known_hosts": "/k", "port": 0}, "nodes.0.control.ssh.port"),
])
def test_a_wrong_ssh_field_is_one_sentence_naming_it(ssh, wrong):
    with pytest.raises(HarnessError, match="^topology: field") as e:
        parse_topology({"entry": {}, "nodes": [{"id": "n1", "endpoints": {}, "control": {"ssh": ssh}}]})
    assert wrong in str(e.value)


def test_the_ssh_files_are_the_topology_folders_and_must_be_there(tmp_path):
    (tmp_path / "keys").mkdir()
    (tmp_path / "keys" / "id").write_text("not a key, never read by the harness\n")
    file = tmp_path / "topology.yaml"
    node = ("nodes: [{id: n1, endpoints: {http: 'http://198.18.14.11:5555'}, control: {ssh: "
            "{key_file: keys/id, known_hosts: keys/known}}}]\nentry: {}\n")
    file.write_text(node)
    with pytest.raises(HarnessError, match=r"control\.ssh\.known_hosts': .*keys/known' does not exist"):
        load_topology(file, allow_remote=True)
    (tmp_path / "keys" / "known").write_text("")
    ssh = load_topology(file, allow_remote=True).node("n1").control.ssh
    assert ssh.key_file == tmp_path / "keys" / "id" and ssh.known_hosts == tmp_path / "keys" / "known"


def test_the_network_rule_covers_the_ssh_hosts_and_the_bastion():
    data = {"entry": {}, "nodes": [{"id": "n1", "endpoints": {"http": "http://127.0.0.1:5555"},
                                    "control": {"ssh": {"agent": True, "known_hosts": "/k",
                                                        "proxy_jump": "ops@192.0.2.7:22"}}}]}
    with pytest.raises(HarnessError, match="'192.0.2.7', which is not a loopback address"):
        parse_topology(data)


def test_a_compose_style_extension_key_holds_what_nodes_share():
    topology = parse_topology({"x-ssh": {"anything": 1}, "entry": {}, "nodes": [
        {"id": "n1", "endpoints": {"http": "http://127.0.0.1:5555"}}]})
    assert topology.node_ids == ["n1"]


@pytest.mark.parametrize(("stderr", "says"), [
    ("@@@ WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED! @@@\nHost key verification failed.\n",
     "is not the one /k holds for it"),
    ("Host key verification failed.\n", "is not the one /k holds for it"),
    ("root@h: Permission denied (publickey).\n", "refused the login"),
    ("ssh: connect to host h port 22: Connection refused\n", "no SSH server answers at root@h"),
    ("bash: iptables: command not found\n", None),
])
def test_what_ssh_says_at_the_door_is_one_sentence(stderr, says):
    said = explain(stderr, "root@h", Path("/k"))
    assert (said is None) if says is None else (says in said)
