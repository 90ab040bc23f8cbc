"""The reference node, for real: three nodes, Redis, HAProxy and Toxiproxy on loopback."""

import ftplib
import smtplib
import time
import uuid

import pytest
import requests
import trustme

from harness.cluster.local import LocalCluster
from harness.evidence import Evidence
from harness.mutants import get_mutant
from harness.traffic.clients import FtpClient, HttpClient, SmtpClient
from harness.history.requests import RequestLog

pytestmark = pytest.mark.cluster


@pytest.fixture(scope="module")
def cluster():
    with LocalCluster(3) as c:
        yield c


@pytest.fixture(autouse=True)
def healed(request):
    if "cluster" in request.fixturenames:
        request.getfixturevalue("cluster").reset()


@pytest.fixture
def http(cluster):
    return HttpClient(cluster.topology, RequestLog(), verify=cluster.ca_file)


def eventually(condition, timeout_s=3.0):
    """Poll a condition that depends on a heartbeat (membership, replication), bounded."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False


def url(cluster, node, service, proto="http"):
    return f"{getattr(cluster.topology.node(node).endpoints, proto)}/invoke/{service}"


def test_every_answer_names_its_node(cluster, http):
    for node in cluster.node_ids:
        assert requests.get(url(cluster, node, "harness.demo:whoami")).json() == {"node": node}
        missing = requests.get(url(cluster, node, "harness.demo:nope"))
        assert missing.status_code == 404 and missing.headers["X-Node-Id"] == node


def test_business_services(cluster, http):
    assert http.call("harness.demo:echo", params={"a": "1"}).detail["params"] == {"a": "1"}
    assert http.call("harness.demo:slow", params={"delay": "50"}).detail["delay_ms"] == 50
    key, value = uuid.uuid4().hex, uuid.uuid4().hex
    assert http.call("harness.demo:cachePut", endpoint="node1", params={"key": key, "value": value}).ok
    assert http.call("harness.demo:cacheGet", endpoint="node2", params={"key": key}).detail["value"] == value
    assert http.call("harness.demo:cacheGet", params={"key": "absent"}).status == 404
    assert http.call("harness.demo:cacheGet").status == 400
    counts = [http.call("harness.demo:counter").detail["count"] for _ in range(4)]
    assert counts == [1, 2, 3, 4]  # one session cookie, served by several nodes
    order = uuid.uuid4().hex
    assert http.call("harness.demo:order", params={"key": order}).detail["duplicate"] is False
    assert http.call("harness.demo:order", params={"key": order}).detail["duplicate"] is True
    audit = http.call("wm.art.admin:audit", endpoint="node3").detail["entries"]
    assert [e["key"] for e in audit].count(order) == 1
    assert http.call("harness.demo:poolQuery").detail["backend_queries"] >= 1
    assert http.call("harness.extras:hello", params={"name": "x"}).detail["hello"] == "x"


def test_admin_services(cluster, http, tmp_path):
    assert http.call("wm.art.admin:health", endpoint="node1").detail["status"] == "ok"
    manifest = http.call("wm.art.admin:packages", endpoint="node1").detail
    assert manifest["adapters"]["WmART"] and "harness.demo:order" in manifest["services"]
    stats = http.call("wm.art.admin:poolStats", endpoint="node2").detail
    pools = cluster.topology.evidence.pools  # the reference described as any cluster would be
    evidence = Evidence(cluster.topology.evidence, None, lambda n: cluster.topology.node(n).placeholders(),
                        tmp_path)
    assert stats["size"] == pools.pool_size == evidence.fetch(pools.connections, "node2")
    http.call("wm.art.admin:replicate", endpoint="node1", params={"package": "HarnessExtras", "version": "9.9"})
    for node in cluster.node_ids:
        assert eventually(lambda: http.call("wm.art.admin:packages", endpoint=node)
                          .detail["packages"]["HarnessExtras"] == "9.9"), node
    http.call("wm.art.admin:setConnection", endpoint="node1", params={"name": "c1"})
    assert "c1" in http.call("wm.art.admin:packages", endpoint="node1").detail["connections"]


def test_a_node_without_the_package_redirects_but_never_admin_services(cluster, http):
    http.call("wm.art.admin:packageDisable", endpoint="node1", params={"package": "HarnessDemo"})
    http.call("wm.art.admin:quiesce", endpoint="node2")
    node3 = cluster.topology.node("node3").endpoints.http

    def redirects_to_node3():  # five in a row: node1 has seen node2 quiesce (heartbeats)
        answers = [requests.get(url(cluster, "node1", "harness.demo:echo"), allow_redirects=False)
                   for _ in range(5)]
        return all(a.status_code == 302 and a.headers["X-Node-Id"] == "node1"
                   and a.headers["Location"].startswith(node3) for a in answers)

    assert eventually(redirects_to_node3)
    followed = http.call("harness.demo:echo", endpoint="node1")
    assert followed.ok and followed.node == "node3" and followed.redirects == ["node1"]
    admin = requests.get(url(cluster, "node2", "wm.art.admin:packages"), allow_redirects=False)
    assert admin.status_code == 200 and admin.headers["X-Node-Id"] == "node2"


def test_ftp_and_smtp_are_served_where_addressed_or_refused(cluster, http):
    log = RequestLog()
    ftp, smtp = FtpClient(cluster.topology, log), SmtpClient(cluster.topology, log)
    stored = ftp.upload("node2", "a.dat", b"payload")
    assert stored.ok and stored.node == "node2" and "stored on node2" in stored.detail["reply"]
    sent = smtp.send("node3", uuid.uuid4().hex)
    assert sent.ok and sent.node == "node3"
    http.call("wm.art.admin:packageDisable", endpoint="node1", params={"package": "HarnessDemo"})
    refused = ftp.upload("node1", "b.dat", b"x")
    assert not refused.ok and refused.status == 451 and refused.node == "node1"
    bounced = smtp.send("node1", uuid.uuid4().hex)
    assert not bounced.ok and bounced.status == 451 and bounced.node == "node1"


def test_https_verifies_against_the_run_ca_only(cluster, tmp_path):
    good = requests.get(url(cluster, "node1", "harness.demo:whoami", "https"), verify=cluster.ca_file)
    assert good.json()["node"] == "node1"
    other_ca = tmp_path / "other-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(other_ca))
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(url(cluster, "node1", "harness.demo:whoami", "https"), verify=str(other_ca))


def test_without_the_wm_art_exclusion_admin_services_are_redirected():
    with LocalCluster(2, mutant=get_mutant("admin_redirected")) as c:
        HttpClient(c.topology, RequestLog()).call("wm.art.admin:quiesce", endpoint="node1")
        assert eventually(lambda: requests.get(url(c, "node1", "wm.art.admin:packages"),
                                               allow_redirects=False).status_code == 302)


def test_raw_protocol_greetings_name_the_node(cluster):
    host, port = cluster.topology.node("node2").endpoints.ftp.removeprefix("ftp://").split(":")
    f = ftplib.FTP()
    assert f.connect(host, int(port)).startswith("220 node2")
    f.close()
    host, port = cluster.topology.node("node3").endpoints.smtp.removeprefix("smtp://").split(":")
    s = smtplib.SMTP()
    code, banner = s.connect(host, int(port))
    assert code == 220 and banner.startswith(b"node3")
    s.close()
