"""The kernel fault engine: its commands are scoped, tagged and undone exactly (properties of
pure code), what a dead process left is found and healed (journals, tagged host rules), and
the real kernel takes and gives back a rule and a qdisc in a throwaway network namespace."""

import concurrent.futures
import os
import shlex
import subprocess
import sys
import signal
import textwrap
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from harness import kernel
from harness.fault_kinds import KINDS
from harness.injector import at_upstream
from harness.history.timeline import FaultKind
from harness.kernel import (BUILDERS, HERE, TAG_PREFIX, Journal, Place, Scope, partition_rules,
                            rule_commands, shaping_commands, stale_host_rules)
from harness.runstate import owner_tag

addresses = st.ip_addresses(v=4).map(str)
scopes = st.builds(Scope, place=st.just(HERE), port=st.integers(1, 65535),
                   address=st.one_of(st.none(), addresses),
                   role=st.sampled_from(["listener", "client"]), device=st.just("lo"))
TAG = TAG_PREFIX + "123.456"


@given(scopes, st.sampled_from(["drop", "reject"]), st.sampled_from(["both", "in", "out"]))
def test_every_rule_is_scoped_to_the_node_and_tagged(scope, mode, direction):
    rules = partition_rules(scope, mode, direction, TAG)
    assert len(rules) == (2 if direction == "both" else 1)
    for rule in rules:
        assert rule[0] in ("INPUT", "OUTPUT") and "-P" not in rule
        assert ["--comment", TAG] == rule[rule.index("--comment"):rule.index("--comment") + 2]
        assert str(scope.port) in (rule[rule.index(flag) + 1] for flag in ("--dport", "--sport") if flag in rule)
        if scope.address:
            assert scope.address in rule
        assert rule[-1] == "DROP" if mode == "drop" else rule[-1] == "tcp-reset"


@given(scopes, st.sampled_from(["drop", "reject"]), st.sampled_from(["both", "in", "out"]))
def test_healing_deletes_exactly_what_was_inserted(scope, mode, direction):
    apply, heal = rule_commands(partition_rules(scope, mode, direction, TAG))
    assert len(apply) == len(heal)
    for a, h in zip(apply, heal, strict=True):
        assert a[3] == "-I" and h[3] == "-D" and a[4] == h[4]
        assert a[6:] == h[5:]  # the same spec, without the insert position


@given(scopes, st.floats(0.1, 10_000))
def test_bandwidth_shapes_only_the_scope_and_heals_with_one_delete(scope, rate):
    apply, heal = shaping_commands(scope, kernel.tbf(rate))
    filt = apply[-1]
    assert filt[:3] == ["tc", "filter", "add"] and str(scope.port) in filt
    if scope.address:
        assert f"{scope.address}/32" in filt
    assert ["htb", "default", "1"] == apply[0][-3:], "unfiltered packets go to the unlimited class"
    assert heal == [["tc", "qdisc", "del", "dev", "lo", "root", "handle", kernel.QDISC_HANDLE]]


def test_a_listener_is_cut_on_its_port_and_a_client_on_its_peer():
    listener = partition_rules(Scope(HERE, 5555, "127.20.1.1"), "drop", "in", TAG)[0]
    assert listener[:7] == ["INPUT", "-d", "127.20.1.1", "-p", "tcp", "--dport", "5555"]
    client = partition_rules(Scope(HERE, 6379, "127.20.3.1", "client"), "drop", "out", TAG)[0]
    assert client[:7] == ["OUTPUT", "-d", "127.20.3.1", "-p", "tcp", "--dport", "6379"]


@given(addresses, st.sampled_from(["both", "in", "out"]))
def test_a_partition_drops_everything_between_the_node_and_its_peer_and_nothing_else(peer, direction):
    rules = partition_rules(Scope(HERE, 0, peer, "peer"), "drop", direction, TAG)
    expected = {"in": [["INPUT", "-s", peer]], "out": [["OUTPUT", "-d", peer]]}
    expected["both"] = expected["in"] + expected["out"]
    assert [r[:3] for r in rules] == expected[direction]
    assert all(r[3:] == ["-m", "comment", "--comment", TAG, "-j", "DROP"] for r in rules)


@given(scopes, st.floats(0.01, 0.99))
def test_packet_loss_drops_that_share_of_the_scopes_packets_at_random(scope, share):
    apply, heal = BUILDERS[FaultKind.LOSS](scope, TAG, {"probability": share})
    assert len(apply) == len(heal) == 2
    for rule in apply:
        at = rule.index("statistic")
        assert rule[at + 1:at + 5] == ["--mode", "random", "--probability", f"{share:g}"]
        assert rule[-1] == "DROP" and TAG in rule and str(scope.port) in rule


@given(scopes, addresses, st.integers(1, 65535))
def test_a_proxied_link_is_faulted_where_its_proxy_sends_the_traffic(scope, host, port):
    """Under `auto`, a kernel fault on a link Toxiproxy carries goes to the proxy's upstream
    (apache-tomcat: the AJP port, not the node's HTTP endpoint, which the balancer never
    used); a scope of the whole namespace stays so, and a host name is not resolved here."""
    moved = at_upstream(scope, f"{host}:{port}")
    assert moved.port == port and moved.place == scope.place and moved.role == scope.role
    assert moved.address == (None if scope.address is None else host)
    assert at_upstream(scope, f"tomcat1:{port}").address == scope.address


def test_a_template_place_gets_the_command_quoted_once():
    place = Place("node1's host", template="ssh {host} sudo {command}", values=(("host", "n1.example"),))
    argv = place.argv(["iptables", "-I", "INPUT", "--comment", "a b"])
    assert argv[:2] == ["sh", "-c"]
    assert argv[2] == "ssh n1.example sudo iptables -I INPUT --comment 'a b'"
    assert kernel.in_namespace_of(42, "c").argv(["tc"]) == ["nsenter", "-t", "42", "-n", "tc"]


def test_the_vocabulary_says_what_the_kernel_needs_for_each_fault_and_it_builds_those():
    assert KINDS[FaultKind.CUT].kernel == KINDS[FaultKind.TIMEOUT].kernel == "iptables"
    assert KINDS[FaultKind.BANDWIDTH].kernel == "tbf" and KINDS[FaultKind.LATENCY].kernel == "netem"
    assert KINDS[FaultKind.SLICER].kernel is None and FaultKind.SLICER not in BUILDERS
    assert "needs Toxiproxy" in kernel.KernelFaults.missing(FaultKind.SLICER)


def test_without_the_right_to_change_the_network_every_kernel_fault_says_so(monkeypatch):
    monkeypatch.setattr(kernel, "privileged", lambda: False)
    assert kernel.KernelFaults.missing("cut") == "kernel network faults need root or CAP_NET_ADMIN"


def test_rules_of_dead_processes_are_found_and_those_of_live_ones_kept():
    live = owner_tag()
    dead = f"{os.getpid()}.0"  # this pid, another start time: a process that is gone
    listing = "\n".join([
        "-P INPUT ACCEPT",
        f'-A INPUT -d 127.20.1.1/32 -p tcp -m tcp --dport 5555 -m comment --comment "{TAG_PREFIX}{dead}" -j DROP',
        f'-A INPUT -d 127.20.1.2/32 -p tcp -m tcp --dport 5555 -m comment --comment "{TAG_PREFIX}{live}" -j DROP',
        "-A FORWARD -j DOCKER-USER",
    ])
    deletes = stale_host_rules(listing)
    assert deletes == [["iptables", "-w", "5", "-D", "INPUT", "-d", "127.20.1.1/32", "-p", "tcp",
                        "-m", "tcp", "--dport", "5555", "-m", "comment", "--comment",
                        f"{TAG_PREFIX}{dead}", "-j", "DROP"]]


def test_a_dead_process_journal_is_replayed_once(tmp_path):
    """A child journals two faults, heals one and dies; the sweep runs the other's undo."""
    marker = tmp_path / "healed"
    child = textwrap.dedent(f"""
        from pathlib import Path
        from harness.kernel import HERE, Journal
        from harness.runstate import owner_tag
        journal = Journal(Path({str(tmp_path)!r}) / f"{{owner_tag()}}.jsonl")
        journal.add(HERE, [["sh", "-c", "echo first >> {marker}"]])
        done = journal.add(HERE, [["sh", "-c", "echo second >> {marker}"]])
        journal.done(done)
    """)
    subprocess.run([sys.executable, "-c", child], check=True)
    assert len(list(tmp_path.glob("*.jsonl"))) == 1
    assert kernel.sweep(tmp_path) >= 1
    assert marker.read_text() == "first\n"
    assert not list(tmp_path.glob("*.jsonl"))
    kernel.sweep(tmp_path)
    assert marker.read_text() == "first\n"


def test_runs_sweeping_together_replay_a_dead_journal_once(tmp_path):
    """pytest-xdist's workers start together and all find a dead run's journal (CI: one read
    it after another had removed it, and its scenario ended in FileNotFoundError)."""
    marker = tmp_path / "healed"
    child = textwrap.dedent(f"""
        from pathlib import Path
        from harness.kernel import HERE, Journal
        from harness.runstate import owner_tag
        journal = Journal(Path({str(tmp_path)!r}) / f"{{owner_tag()}}.jsonl")
        journal.add(HERE, [["sh", "-c", "sleep 0.3; echo once >> {marker}"]])
    """)
    subprocess.run([sys.executable, "-c", child], check=True)
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        healed = list(pool.map(lambda _: kernel.sweep(tmp_path), range(4)))
    assert sorted(healed) == [0, 0, 0, 1]
    assert marker.read_text() == "once\n"
    assert not list(tmp_path.glob("*.jsonl"))


def test_a_live_process_journal_is_left_alone(tmp_path):
    journal = Journal(tmp_path / f"{owner_tag()}.jsonl")
    journal.add(HERE, [["false"]])
    kernel.sweep(tmp_path)
    assert journal.path.exists()


def own_namespace() -> subprocess.Popen:
    """A process in a network namespace of its own, once `unshare` has made it (before that,
    nsenter would enter this host's namespace)."""
    process = subprocess.Popen(["unshare", "--net", "sleep", "30"])
    deadline = time.monotonic() + 5
    while os.readlink(f"/proc/{process.pid}/ns/net") == os.readlink("/proc/self/ns/net"):
        assert time.monotonic() < deadline, "unshare made no namespace"
        time.sleep(0.01)
    return process


needs_root = pytest.mark.skipif(not kernel.privileged(), reason="needs root or CAP_NET_ADMIN")


@needs_root
def test_the_kernel_applies_and_heals_a_partition_and_a_bandwidth_limit(tmp_path):
    """In a network namespace of our own (unshare): the engine's rules and qdisc appear while
    the fault is in force and are gone after."""
    namespace = own_namespace()
    try:
        place = kernel.in_namespace_of(namespace.pid, "a test namespace")
        subprocess.run(place.argv(["ip", "link", "set", "lo", "up"]), check=True)
        engine = kernel.KernelFaults(journals=tmp_path)

        def seen() -> str:
            return "".join(subprocess.run(place.argv(shlex.split(c)), capture_output=True,
                                          text=True).stdout for c in ("iptables -S", "tc qdisc show dev lo"))

        for kind, sign in (("cut", "tcp-reset"), ("timeout", "DROP"), ("bandwidth", "tbf")):
            with engine.applied(kind, Scope(place, 5555, "127.0.0.1", device="lo"), rate=1):
                assert sign in seen()
            assert sign not in seen() and engine.tag not in seen()
        assert not engine.journal.pending
    finally:
        namespace.kill()
        namespace.wait()



CONNECT = textwrap.dedent("""\
    import socket, sys, time
    start = time.monotonic()
    try:
        socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=2).close()
        outcome = "connected"
    except OSError as e:
        outcome = type(e).__name__ + (f"({e.errno})" if type(e) is OSError else "")
    print(outcome, time.monotonic() - start)
""")


LISTEN = "import socket, time; s = socket.create_server(('127.0.0.1', 5555)); time.sleep(30)"


@needs_root
@pytest.mark.parametrize(("role", "direction"), [("listener", "both"), ("listener", "in"),
                                                 ("client", "both"), ("client", "out")])
def test_a_cut_is_refused_within_milliseconds_not_a_black_hole(tmp_path, role, direction):
    """A cut does what the README says: the connection is refused at once. In both
    directions, the reset the REJECT sends back crosses the other direction's rule; were it
    caught there, the client would time out instead (the black hole of old). (A listener's
    "out" cut and a client's "in" cut stop only answers, not a connection's opening.)"""
    namespace = own_namespace()
    try:
        place = kernel.in_namespace_of(namespace.pid, "a test namespace")
        subprocess.run(place.argv(["ip", "link", "set", "lo", "up"]), check=True)
        server = subprocess.Popen(place.argv([sys.executable, "-c", LISTEN]))
        time.sleep(0.3)
        engine = kernel.KernelFaults(journals=tmp_path)
        # a client-role scope is the node's connection to its peer (the store) at that port
        with engine.applied("cut", Scope(place, 5555, "127.0.0.1", role), direction=direction):
            outcome, seconds = subprocess.run(place.argv([sys.executable, "-c", CONNECT, "5555"]),
                                              capture_output=True, text=True).stdout.split()
        server.kill()
        assert outcome == "ConnectionRefusedError" and float(seconds) < 0.1, (outcome, seconds)
    finally:
        namespace.kill()
        namespace.wait()



ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _in_force(owners: list[str]) -> dict[str, bool]:
    """Are rules tagged by these processes in the host's iptables, and is a tbf on lo?
    (By owner: a test beside this one may hold rules of its own.)"""
    rules = subprocess.run(["iptables", "-w", "5", "-S"], capture_output=True, text=True).stdout
    qdisc = subprocess.run(["tc", "qdisc", "show", "dev", "lo"], capture_output=True, text=True).stdout
    return {"iptables": any(TAG_PREFIX + owner in rules for owner in owners), "tbf": "tbf" in qdisc}


@needs_root
@pytest.mark.cluster
@pytest.mark.host_wide  # a bandwidth limit is the loopback's root qdisc
def test_faults_left_by_a_killed_pytest_are_healed_by_the_next_run(tmp_path):
    """pytest SIGKILLed while a kernel fault is in force (a bandwidth limit, then a cut):
    the rule and the qdisc outlive it; the next run finds and removes both."""
    killed: list[str] = []
    for select, sign in (("network and bandwidth", "tbf"), ("failover and cut and not https", "iptables")):
        run = subprocess.Popen(
            [sys.executable, "-m", "pytest", "scenarios/", "--backend", "local", "--network-faults",
             "kernel", "-k", select, "--fault-seconds", "60", "-p", "no:cacheprovider", "-q"],
            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        killed.append(owner_tag(run.pid))
        try:
            deadline = time.monotonic() + 60
            while not _in_force(killed)[sign] and run.poll() is None and time.monotonic() < deadline:
                time.sleep(0.2)
            assert _in_force(killed)[sign], f"no {sign} fault came into force"
        finally:
            os.killpg(run.pid, signal.SIGKILL)
            run.wait()
        assert _in_force(killed)[sign], "the fault should outlive the killed run"
    done = subprocess.run([sys.executable, "-m", "pytest", "scenarios/", "--backend", "local",
                           "-m", "admin", "-p", "no:cacheprovider", "-q"],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-500:]
    assert _in_force(killed) == {"iptables": False, "tbf": False}
    qdisc = subprocess.run(["tc", "qdisc", "show", "dev", "lo"], capture_output=True, text=True).stdout
    assert qdisc.startswith("qdisc noqueue"), qdisc


def test_the_dry_run_lists_each_links_commands_or_the_field_it_needs(tmp_path):
    """`harness probe --list-fault-commands`: here for loopback nodes, through the operator's
    template elsewhere; what cannot be placed names its field."""
    import yaml

    from harness.config import NodeControl, parse_topology
    from harness.probe import fault_commands

    with open(os.path.join(ROOT, "examples", "topology-thirdparty.yaml")) as f:
        topology = parse_topology(yaml.safe_load(f), source="thirdparty")
    text = fault_commands(topology, tmp_path / "log")
    assert "node1 http (on this host):" in text
    assert ("apply: iptables -w 5 -I INPUT 1 -d 127.11.1.1 -p tcp --dport 8080 '!' --tcp-flags "
            f"RST RST -m comment --comment '{TAG_PREFIX}") in text
    assert "heal:  tc qdisc del dev lo root handle 4a53:" in text
    remote = topology.model_copy(update={"nodes": [
        topology.nodes[0].model_copy(update={"control": NodeControl(network="ssh {host} sudo {command}")}),
        *topology.nodes[1:]]})
    text = fault_commands(remote, tmp_path / "log")
    assert "apply: sh -c 'ssh 127.11.1.1 sudo iptables -w 5 -I INPUT 1" in text
    assert "bandwidth: needs `nodes[node1].control.network_device`" in text
    for kind in ("cut", "timeout", "reset_peer", "loss"):  # every kernel kind, not one of each rule
        assert f"  {kind} (" in text, kind
    # a partition needs the node's own host: both fields that can give one are named
    assert ("node2 from entry: needs `nodes[node2].control.ssh` or `nodes[node2].control.network`"
            in text)
    assert "proxy disabled" not in text


# What `control.network` templates do to the command's words: ssh joins them with spaces and
# the far shell splits them again (here `eval "$*"` stands for that far shell), or they are
# passed whole, NUL-separated, to `xargs -0 env` (the README's form).
RESPLIT = Place("a host whose shell re-splits the words", template="""sh -c 'eval "$*"' _ {command}""")
INTACT = Place("a host given every word whole", template="""printf '%s\\0' {command} | sh -c 'xargs -0 env'""")


@needs_root
@pytest.mark.parametrize("kind", ["iptables", "tbf"])
def test_kernel_support_is_the_trials_evidence_not_an_exit_code(kind):
    """Through re-split words `sh -c tc` runs `tc` alone, which exits 0: the check says no."""
    kernel.kernel_supports.cache_clear()
    assert kernel.kernel_supports(kind) and kernel.kernel_supports(kind, INTACT)
    assert not kernel.kernel_supports(kind, RESPLIT)
