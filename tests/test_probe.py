"""The pre-run probe on a cluster that is still recovering: a balancer whose fail timeout has
not passed answers 5xx for seconds after the last run's faults. That is said, and asked again
within a bound; only an answer that stays wrong is a problem that stops the run."""

import threading
from collections.abc import Iterator
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
