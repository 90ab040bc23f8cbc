"""`harness init`: what names a node is found from the answers (pure finders, property-tested),
and on the reference cluster the file it writes passes `harness probe` as written."""

import re
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from harness.cluster.docker import DockerCluster
from harness.cluster.local import LocalCluster
from harness.init import Sample, cookie_affinity, find_http_identity, greeting_regex

ROOT = Path(__file__).resolve().parent.parent
WHOAMI = "/invoke/harness.demo:whoami"


def answers(per_node: dict[str, tuple[dict, str]], times: int = 3) -> dict[str, list[Sample]]:
    return {f"http://127.0.0.1:{8000 + i}": [Sample(headers, body)] * times
            for i, (headers, body) in enumerate(per_node.values())}


def test_a_header_steady_per_node_and_distinct_names_the_node():
    found = find_http_identity(answers({
        "a": ({"x-node-id": "is1", "date": "t1", "server": "same"}, "ok"),
        "b": ({"x-node-id": "is2", "date": "t2", "server": "same"}, "ok")}))
    assert found.rule == {"header": "x-node-id"} and sorted(found.ids.values()) == ["is1", "is2"]


def test_a_json_field_names_the_node_when_no_header_does():
    found = find_http_identity(answers({
        "a": ({}, '{"status": "up", "server": {"name": "is1"}}'),
        "b": ({}, '{"status": "up", "server": {"name": "is2"}}')}))
    assert found.rule == {"json_field": "server.name"}


def test_a_value_that_changes_on_one_node_names_nothing():
    per_node = {"http://a": [Sample({"x-req": "1"}, "same"), Sample({"x-req": "2"}, "same")],
                "http://b": [Sample({"x-req": "3"}, "same"), Sample({"x-req": "4"}, "same")]}
    assert find_http_identity(per_node) is None


@given(st.lists(st.from_regex(r"[a-z][a-z0-9]{0,8}", fullmatch=True), min_size=2, max_size=5,
                unique=True),
       st.sampled_from(["served by {}", "<p>Host: {} (up)</p>", "{} ready"]))
def test_the_one_word_of_the_body_that_differs_becomes_a_regex_reading_each_node(ids, template):
    found = find_http_identity(answers({n: ({}, template.format(n)) for n in ids}))
    assert found is not None and "regex" in found.rule
    assert sorted(found.ids.values()) == sorted(ids)


def test_a_multi_line_greeting_naming_the_node_on_its_second_line():
    greetings = {n: f"220-Welcome to the cluster\n220-{n} FTP ready\n220 go ahead" for n in ("is1", "is2")}
    regex = greeting_regex(greetings)
    assert regex == r"^220[ -](?P<node>[A-Za-z0-9_.-]+) FTP ready"
    assert greeting_regex({"is1": "220 FTP ready", "is2": "220 FTP ready"}) is None


@given(st.lists(st.from_regex(r"[a-z][a-z0-9]{0,8}", fullmatch=True), min_size=2, max_size=4,
                unique=True),
       st.datetimes(), st.datetimes())
def test_a_greeting_naming_its_time_is_read_again_at_another_time(ids, sent, later):
    """Exim's: read within one second, every node's names the same time; the regex must not."""
    banner = "220 {} ESMTP Exim 4.96 {:%a, %d %b %Y %H:%M:%S} +0000"
    regex = greeting_regex({n: banner.format(n, sent) for n in ids})
    assert regex is not None
    for n in ids:
        assert re.search(regex, banner.format(n, later), re.MULTILINE).group("node") == n


def test_affinity_by_cookie_is_noted_only_where_the_cookie_holds_a_client_that_would_spread():
    assert "affinity by cookie" in cookie_affinity(["is1", "is2"], ["is2"] * 6, ["JSESSIONID"])
    assert cookie_affinity(["is1", "is1"], ["is1"] * 6, ["JSESSIONID"]) is None  # nothing spreads
    assert cookie_affinity(["is1", "is2"], ["is1", "is2"], ["JSESSIONID"]) is None
    assert cookie_affinity(["is1", "is2"], ["is2"] * 6, []) is None  # no cookie: a coincidence


@pytest.mark.cluster
@pytest.mark.parametrize("backend", [pytest.param(LocalCluster, id="local"),
                                     pytest.param(DockerCluster, id="docker", marks=pytest.mark.docker)])
def test_init_on_the_reference_cluster_writes_a_file_that_probes_clean(tmp_path, backend):
    """The docker backend's nodes are containers at addresses the harness made (198.18.0.0/15):
    the user opts in to them with --allow-remote-targets, as for any address off loopback."""
    with backend(3) as cluster:
        topo = cluster.topology
        out = tmp_path / "found.yaml"
        harness = [sys.executable, "-m", "harness.cli"]
        nodes = [a for n in topo.nodes for a in ("--node", n.endpoints.http)]
        https = [a for n in topo.nodes for a in ("--node-https", n.endpoints.https)]
        remote = [] if backend is LocalCluster else ["--allow-remote-targets"]
        # the docker backend's nodes greet behind one address on ports of their own
        greeters = [] if backend is LocalCluster else \
            [a for n in topo.nodes for p in ("ftp", "smtp") for a in (f"--node-{p}", getattr(n.endpoints, p))]
        init = subprocess.run([*harness, "init", "--entry", topo.entry.http, "--entry-https",
                               topo.entry.https, *nodes, *https, *greeters, "--path", WHOAMI,
                               "--ca-file", str(cluster.ca_file), "--topology-out", str(out), *remote],
                              cwd=ROOT, capture_output=True, text=True, timeout=120)
        assert init.returncode == 0, init.stderr
        text = out.read_text()
        assert "header: \"x-node-id\"" in text and "greeting_regex" in text and "ca_file" in text
        assert "balancing: request      # found: one keep-alive connection saw" in text
        probe = subprocess.run([*harness, "probe", "--topology", str(out), *remote], cwd=ROOT,
                               capture_output=True, text=True, timeout=120)
        assert probe.returncode == 0, probe.stderr
        for node in ("node1", "node2", "node3"):
            assert f"{node}        ftp      yes     {node}" in probe.stdout


def test_nodes_that_name_nothing_get_one_sentence_and_exit_2(tmp_path):
    """Two nodes that answer alike (here: one server behind both URLs)."""
    import http.server
    import threading

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), http.server.SimpleHTTPRequestHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        done = subprocess.run([sys.executable, "-m", "harness.cli", "init", "--entry", url,
                               "--node", url, "--node", url], cwd=tmp_path,
                              capture_output=True, text=True, timeout=60,
                              env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    finally:
        server.shutdown()
        server.server_close()
    assert done.returncode == 2
    assert done.stderr.startswith("harness: nothing in the answers to GET / names the node")
    assert done.stderr.count("\n") == 1


def test_a_node_greeter_off_loopback_is_refused_before_anything_is_contacted(tmp_path):
    """--node-ftp and --node-smtp are targets like --node: the network rule holds for them."""
    done = subprocess.run([sys.executable, "-m", "harness.cli", "init", "--entry", "http://127.0.0.1:9",
                           "--node", "http://127.0.0.1:9", "--node", "http://127.0.0.2:9",
                           "--node-smtp", "smtp://127.0.0.1:25", "--node-smtp", "smtp://192.0.2.7:25"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=60,
                          env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert done.returncode == 2
    assert done.stderr == ("harness: smtp://192.0.2.7:25 is not on a loopback address; pass "
                           "--allow-remote-targets to contact it\n")
