"""The load generator's HTTP transport sends every request once: a server that closes its
keep-alive connections receives exactly as many requests as there are records, and a request
the server took but never answered is a failed record that says so, not a resend."""

import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest

from harness.config import parse_topology
from harness.traffic.clients import HttpClient, wire_transport
from harness.history.requests import RequestLog

ANSWER = b"HTTP/1.1 200 OK\r\nX-Node-Id: node1\r\nContent-Length: 2\r\n\r\nok"


@contextmanager
def server(behaviour: Callable[[int], str]) -> Iterator[tuple[int, list[str]]]:
    """HTTP/1.1 on loopback; for its n-th request `behaviour(n)` says what it does: "keep"
    (answer, keep the connection), "answer" (answer with keep-alive headers, then close
    anyway), or "drop" (close without answering). Yields its port and the request lines."""
    listener = socket.create_server(("127.0.0.1", 0))
    received: list[str] = []
    stop = threading.Event()

    def serve() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            with conn:
                while True:
                    data = b""
                    while b"\r\n\r\n" not in data and (chunk := conn.recv(4096)):
                        data += chunk
                    if not data:
                        break
                    received.append(data.split(b"\r\n", 1)[0].decode())
                    what = behaviour(len(received))
                    if what == "drop":
                        break
                    # corked: an answer and the close after it leave together, as a
                    # balancer's last answer on a connection does, so no run depends on timing
                    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_CORK, what == "answer")
                    conn.sendall(ANSWER)
                    if what == "answer":
                        break

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1], received
    finally:
        stop.set()
        thread.join(timeout=5)
        listener.close()


def client(port: int, log: RequestLog) -> HttpClient:
    url = f"http://127.0.0.1:{port}"
    topology = parse_topology({"nodes": [{"id": "node1", "endpoints": {"http": url}}],
                               "entry": {"http": url}}, source="test")
    return HttpClient(topology, log, timeout_s=2, transport=wire_transport(topology))


@pytest.mark.parametrize("answer_every", [1, 2, 3])
def test_a_server_closing_every_connection_gets_one_request_per_record(answer_every):
    log = RequestLog()
    with server(lambda n: "answer" if n % answer_every == 0 else "drop") as (port, received):
        http = client(port, log)
        for _ in range(30):
            http.request()
    assert len(received) == len(log.records) == 30
    assert sum(r.ok for r in log) == 30 // answer_every
    assert all(r.node == "node1" for r in log if r.ok)
    assert all("before answering" in (r.error or "") for r in log if not r.ok)


def test_a_kept_connection_closed_under_a_request_fails_it_saying_so():
    """The balancer closes a pooled connection as a request arrives on it (a node died)."""
    log = RequestLog()
    with server(lambda n: "keep" if n % 3 else "drop") as (port, received):
        http = client(port, log)
        for _ in range(9):
            http.request()
    assert len(received) == len(log.records) == 9
    failed = [r.error for r in log if not r.ok]
    assert len(failed) == 3 and all("kept-alive connection" in e and "not resent" in e
                                    for e in failed), failed
