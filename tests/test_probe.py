"""The pre-run probe on a cluster that is still recovering: a balancer whose fail timeout has
not passed answers 5xx for seconds after the last run's faults. That is said, and asked again
within a bound; only an answer that stays wrong is a problem that stops the run."""

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from harness import probe as probe_module
from harness.config import parse_topology
from harness.probe import probe


def serving(statuses: list[int]) -> Iterator[str]:
    """An HTTP server on loopback answering `statuses` in turn, then the last one for ever,
    the body naming node1."""
    answers = iter(statuses)
    last = [statuses[0]]

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            last[0] = next(answers, last[0])
            body = b"served by node1"
            self.send_response(last[0])
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def recovering():
    yield from serving([502, 502, 503, 200])


@pytest.fixture
def broken():
    yield from serving([502])


def topology(url: str):
    return parse_topology({
        "entry": {"http": url},
        "nodes": [{"id": "node1", "endpoints": {"http": url}}],
        "http": {"request": {"path": "/whoami.txt"}},
        "identity": {"http": {"regex": "served by (?P<node>\\w+)"}},
    }, source="test")


def test_an_entry_still_recovering_is_a_warning_not_a_stop(recovering):
    result = probe(topology(recovering))
    assert result.problems == []
    assert len(result.warnings) == 1
    warning = result.warnings[0]
    assert warning.startswith("the cluster entry answered HTTP 502 at first and 200 ")
    assert "still recovering" in warning


def test_an_answer_that_stays_wrong_is_a_problem_naming_how_long(broken, monkeypatch):
    monkeypatch.setattr(probe_module, "SETTLE_S", 1.0)
    result = probe(topology(broken))
    assert result.problems and result.problems[0].startswith(
        f"the cluster entry answered HTTP at {broken}/whoami.txt but HTTP 502")
    assert "s after the first answer)" in result.problems[0]


@contextmanager
def greeting_late(delay_s: float | None) -> Iterator[str]:
    """An SMTP server on loopback that greets as node1 `delay_s` after each connection (None:
    never), then answers every command with 250 (221 to QUIT)."""
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.2)
    stop = threading.Event()

    def converse(conn: socket.socket) -> None:
        with conn:
            if delay_s is None or stop.wait(delay_s):
                stop.wait(10)
                return
            conn.sendall(b"220 node1 ESMTP test\r\n")
            for line in conn.makefile("rb"):
                conn.sendall(b"221 bye\r\n" if line.upper().startswith(b"QUIT") else b"250 ok\r\n")

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            threading.Thread(target=converse, args=(conn,), daemon=True).start()

    acceptor = threading.Thread(target=accept, daemon=True)
    acceptor.start()
    try:
        yield f"smtp://127.0.0.1:{server.getsockname()[1]}"
    finally:
        stop.set()
        acceptor.join()
        server.close()


def greeter_topology(url: str):
    return parse_topology({
        "entry": {"smtp": url},
        "nodes": [{"id": "node1", "endpoints": {"smtp": url}}],
        "identity": {"smtp": {"greeting_regex": "^220 (?P<node>\\w+) ESMTP"}},
    }, source="test")


def test_a_greeting_late_on_a_loaded_host_is_a_warning_not_a_stop(monkeypatch):
    monkeypatch.setattr(probe_module, "ANSWER_TIMEOUT_S", 0.3)
    monkeypatch.setattr(probe_module, "SETTLE_S", 3.0)
    with greeting_late(0.6) as url:
        result = probe(greeter_topology(url))
    assert result.problems == [], result.problems
    assert [w for w in result.warnings if w.startswith("node node1 greeted over SMTP only after")]


def test_no_greeting_at_all_is_no_answer_and_stops_the_run(monkeypatch):
    monkeypatch.setattr(probe_module, "ANSWER_TIMEOUT_S", 0.3)
    monkeypatch.setattr(probe_module, "SETTLE_S", 0.6)
    with greeting_late(None) as url:
        result = probe(greeter_topology(url))
    assert any(p.startswith("node node1 did not answer SMTP at") for p in result.problems), result.problems
