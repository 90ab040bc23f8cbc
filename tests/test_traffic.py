"""The Locust users drive plain servers (http.server, aiosmtpd, pyftpdlib), and the request
log a Locust run writes agrees exactly with Locust's own request count."""

import base64
import json
import socket
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from aiosmtpd.controller import Controller
from pyftpdlib.authorizers import DummyAuthorizer
from pyftpdlib.handlers import FTPHandler
from pyftpdlib.servers import FTPServer

from harness.config import parse_topology
from harness.errors import ConfigurationError
from harness.secrets import redact
from harness.traffic.clients import FtpClient, HttpClient, wire_transport
from harness.traffic.load import Load
from harness.history.requests import RequestLog, RequestRecord


class Whoami(BaseHTTPRequestHandler):
    def do_GET(self):
        body = b'{"node": "plain-http"}'
        self.send_response(200)
        self.send_header("X-Node-Id", "plain-http")
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


class Sink:
    async def handle_DATA(self, server, session, envelope):
        return "250 OK"


def _free_port() -> int:
    """aiosmtpd's Controller probes its own port, so it cannot take port 0."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def servers(tmp_path_factory):
    http = ThreadingHTTPServer(("127.0.0.1", 0), Whoami)
    threading.Thread(target=http.serve_forever, daemon=True).start()
    smtp = Controller(Sink(), hostname="127.0.0.1", port=_free_port(), server_hostname="plain-smtp")
    smtp.start()
    authorizer = DummyAuthorizer()
    home = tmp_path_factory.mktemp("ftp")
    authorizer.add_user("harness", "harness", str(home), perm="elradfmw")
    handler = type("Handler", (FTPHandler,), {"authorizer": authorizer, "banner": "plain-ftp ready"})
    ftp = FTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=ftp.serve_forever, kwargs={"timeout": 0.2}, daemon=True).start()
    yield {"http": f"http://127.0.0.1:{http.server_port}",
           "smtp": f"smtp://127.0.0.1:{smtp.port}",
           "ftp": f"ftp://127.0.0.1:{ftp.socket.getsockname()[1]}"}
    http.shutdown()
    smtp.stop()
    ftp.close_all()


@pytest.mark.parametrize("protocol", ["http", "ftp", "smtp"])
def test_locust_users_drive_plain_servers_and_the_counts_agree(servers, protocol, tmp_path):
    topology = parse_topology({
        "entry": {"http": servers["http"]},
        "nodes": [{"id": "plain", "endpoints": {protocol: servers[protocol]}}],
        "identity": {"ftp": {"greeting_regex": r"^220 (?P<node>plain-ftp)"},
                     "smtp": {"greeting_regex": r"^220 (?P<node>\S+)"}},
    })
    log = tmp_path / "log.jsonl"
    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps({"topology": json.loads(topology.model_dump_json()),
                                "groups": [{"protocol": protocol, "users": 2, "rate": 20}],
                                "duration_s": 2, "log": str(log)}))
    done = subprocess.run([sys.executable, "-m", "harness.traffic.drive", str(plan)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-500:]
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    records = RequestLog.read(log).records
    assert summary["locust_requests"] == len(records) == summary["requests"] > 5
    assert summary["failures"] == sum(not r.ok for r in records) == 0
    nodes = {r.node for r in records}
    assert nodes == {f"plain-{protocol}"}, nodes
    if protocol == "ftp":  # the connect step is a request of its own
        assert {r.operation for r in records} == {"connect", "upload"}


def test_the_load_shared_over_processes_is_one_request_log(servers, tmp_path):
    """--load-processes: each driver writes its own log; the load reads them as one."""
    topology = parse_topology({"entry": {"http": servers["http"]},
                               "nodes": [{"id": "plain", "endpoints": {"http": servers["http"]}}]})
    with Load(topology, tmp_path, processes=2, users=4, rate=20, duration_s=2) as load:
        pass
    assert len(load.log_paths) == 2 and all(p.stat().st_size > 0 for p in load.log_paths)
    records = load.records
    lines = [len(p.read_text().splitlines()) for p in load.log_paths]
    assert load.summary["requests"] == len(records) == sum(lines) and min(lines) > 0
    assert [r.start_mono for r in records] == sorted(r.start_mono for r in records)
    assert all(r.ok and r.node == "plain-http" for r in records)


def test_the_records_so_far_count_each_line_once_when_two_threads_read_them(tmp_path):
    """A scenario's thread and the stop conditions' watch both read a running load's log: each
    line is one record however their reads interleave (a shared place in the log, advanced by
    both at once, counted lines twice and ended a balance load short of its evidence)."""
    topology = parse_topology({"entry": {"http": "http://127.0.0.1:9"},
                               "nodes": [{"id": "n", "endpoints": {"http": "http://127.0.0.1:9"}}]})
    load = Load(topology, tmp_path, users=1, rate=1)  # never started: the test writes its log
    line = RequestRecord("http", "GET /", "entry", "http://127.0.0.1:9/", 0.0, 0.0, 0.0, True,
                         200, "n").to_json() + "\n"
    written, lines, done = 0, 2000, threading.Event()

    def read() -> None:
        while not done.is_set():
            load.records_so_far()

    readers = [threading.Thread(target=read) for _ in range(4)]
    for r in readers:
        r.start()
    with load.log_paths[0].open("a") as log:
        for _ in range(lines):
            log.write(line)
            log.flush()
            written += 1
    done.set()
    for r in readers:
        r.join()
    assert len(load.records_so_far()) == written == lines


class Guarded(BaseHTTPRequestHandler):
    """Answers 200 only to Basic harness:<the right password>."""

    password = "open-sesame"

    def do_GET(self):
        expected = "Basic " + base64.b64encode(f"harness:{self.password}".encode()).decode()
        ok = self.headers.get("Authorization") == expected
        self.send_response(200 if ok else 401)
        self.send_header("X-Node-Id", "guarded")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.mark.parametrize("transport", [None, wire_transport], ids=["requests", "wire"])
def test_http_authenticates_from_the_environment_and_writes_no_secret(monkeypatch, transport):
    server = ThreadingHTTPServer(("127.0.0.1", 0), Guarded)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        topology = parse_topology({
            "entry": {"http": f"http://127.0.0.1:{server.server_port}"},
            "nodes": [{"id": "guarded", "endpoints": {}}],
            "http": {"request": {"path": "/ping"},
                     "auth": {"user": "harness", "password_env": "GUARDED_PASSWORD"}}})

        def client(log: RequestLog) -> HttpClient:
            return HttpClient(topology, log, transport=transport and transport(topology))

        with pytest.raises(ConfigurationError, match="GUARDED_PASSWORD .named by http.auth.password_env. is not set"):
            client(RequestLog())
        log = RequestLog()
        monkeypatch.setenv("GUARDED_PASSWORD", Guarded.password)
        assert client(log).request().node == "guarded" and log.records[-1].ok
        monkeypatch.setenv("GUARDED_PASSWORD", "wrong")
        refused = client(log).request()
        assert not refused.ok and refused.error == "HTTP 401"
        assert not any(Guarded.password in r.to_json() or "wrong" in r.to_json() for r in log)
        assert redact(f"said {Guarded.password}") == "said ***"
    finally:
        server.shutdown()


def test_an_ftp_session_to_a_refused_port_records_failures_and_never_raises():
    port = _free_port()  # nothing listens there
    topology = parse_topology({"entry": {}, "nodes": [
        {"id": "gone", "endpoints": {"ftp": f"ftp://127.0.0.1:{port}"}}]})
    log = RequestLog()
    client = FtpClient(topology, log)
    with client.session("gone") as session:
        upload = session.upload("a.dat", b"x")
    assert [r.operation for r in log] == ["connect", "upload"]
    assert not upload.ok and upload.error.startswith("no session: ConnectionRefusedError")
    assert not client.upload("gone", "b.dat", b"x").ok
