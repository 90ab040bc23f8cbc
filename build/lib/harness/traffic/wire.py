"""HTTP/1.1 on plain sockets for the load generator: one attempt per request, never resent.

Why our own: the load generator must see what clients see. geventhttpclient (Locust's
FastHttpUser) resends a request whose pooled connection the balancer closed, which hid the
`lb_no_redispatch` mutant; `requests` resends nothing but costs several times more per call
(the measurements are in the README). This client keeps one keep-alive connection per origin
and, when that connection turns out to be closed (the server closed it between requests),
fails the request with an error that says so: the record counts it, nothing is sent twice.

It speaks what the harness needs and no more: GET/POST/PUT/HEAD with a query, headers and a
body; answers with Content-Length, chunked, or until close; TLS verified against the
cluster's CA (or not, with `tls.insecure`), client certificates; cookies by name (a stateful
session's cookie). Under Locust the socket and ssl modules are gevent's.
"""

from __future__ import annotations

import contextlib
import select
import socket
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any
from urllib.parse import urlencode, urlsplit

MAX_HEADER_BYTES = 64 * 1024
REDIRECTS = (301, 302, 303, 307, 308)


class StaleConnection(ConnectionError):
    """The pooled connection was closed by the server before it answered; not resent."""


class Headers(dict[str, str]):
    """Answer headers, looked up without regard to case (as identity rules name them)."""

    def __init__(self, pairs: list[tuple[str, str]]) -> None:
        super().__init__((k.lower(), v) for k, v in pairs)
        self.pairs = pairs

    def get(self, key: str, default: Any = None) -> Any:  # type: ignore[override]
        return super().get(key.lower(), default)

    def __getitem__(self, key: str) -> str:
        return super().__getitem__(key.lower())

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and super().__contains__(key.lower())


@dataclass
class Answer:
    status: int
    headers: Headers
    body: bytes

    @cached_property
    def text(self) -> str:
        return self.body.decode(errors="replace")

    @property
    def is_redirect(self) -> bool:
        return self.status in REDIRECTS and "location" in self.headers

    @property
    def ok(self) -> bool:
        return self.status < 400


def tls_context(verify: str | bool, client_cert: str | None = None,
                client_key: str | None = None) -> ssl.SSLContext:
    """`verify` as `requests` takes it: a CA file, True (the system's), or False."""
    if verify is False:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    else:
        context = ssl.create_default_context(cafile=verify if isinstance(verify, str) else None)
    if client_cert:
        context.load_cert_chain(client_cert, client_key)
    return context


@dataclass
class _Connection:
    sock: socket.socket
    buffer: bytes = b""
    used: int = 0  # answers read on it: a failure on a used connection is a stale one

    def closed_by_peer(self) -> bool:
        """Has the server closed (or written to) this idle connection? Asked before reuse,
        as urllib3 does, so that a connection closed between requests is not sent on."""
        readable, _, _ = select.select([self.sock], [], [], 0)
        return bool(readable)

    def read_more(self) -> bytes:
        chunk = self.sock.recv(65536)
        if not chunk:
            raise EOFError
        self.buffer += chunk
        return chunk

    def take(self, n: int) -> bytes:
        while len(self.buffer) < n:
            self.read_more()
        data, self.buffer = self.buffer[:n], self.buffer[n:]
        return data

    def line(self) -> bytes:
        while (end := self.buffer.find(b"\r\n")) < 0:
            if len(self.buffer) > MAX_HEADER_BYTES:
                raise ValueError("an answer line longer than 64 KiB")
            self.read_more()
        data, self.buffer = self.buffer[:end], self.buffer[end + 2:]
        return data


@dataclass
class WireTransport:
    """Requests over keep-alive connections, one per origin; `fresh` closes each after use."""

    verify: str | bool = True
    client_cert: str | None = None
    client_key: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    fresh: bool = False
    _connections: dict[tuple[str, str, int], _Connection] = field(default_factory=dict)
    _cookies: dict[str, str] = field(default_factory=dict)

    @cached_property
    def _tls(self) -> ssl.SSLContext:
        return tls_context(self.verify, self.client_cert, self.client_key)

    def request(self, method: str, url: str, params: Mapping[str, str] | None = None,
                headers: Mapping[str, str] | None = None, body: str | None = None,
                timeout: float = 5.0) -> Answer:
        parts = urlsplit(url)
        scheme, host = parts.scheme, parts.hostname or ""
        port = parts.port or (443 if scheme == "https" else 80)
        target = (parts.path or "/") + ("?" + parts.query if parts.query else "")
        if params:
            target += ("&" if parts.query else "?") + urlencode(params)
        payload = body.encode() if body is not None else b""
        lines = [f"{method} {target} HTTP/1.1", f"Host: {parts.netloc}",
                 *(f"{k}: {v}" for k, v in {**self.headers, **(headers or {})}.items())]
        if self._cookies:
            lines.append("Cookie: " + "; ".join(f"{k}={v}" for k, v in self._cookies.items()))
        if payload or method in ("POST", "PUT"):
            lines.append(f"Content-Length: {len(payload)}")
        if self.fresh:
            lines.append("Connection: close")
        message = ("\r\n".join(lines) + "\r\n\r\n").encode() + payload
        origin = (scheme, host, port)
        conn = self._connections.pop(origin, None)
        if conn is not None and conn.closed_by_peer():
            conn.sock.close()  # nothing was sent on it: opening another is not a resend
            conn = None
        conn = conn or self._connect(scheme, host, port, timeout)
        try:
            conn.sock.settimeout(timeout)
            conn.sock.sendall(message)
            answer, reusable = self._read(conn, method)
        except (EOFError, ConnectionResetError, BrokenPipeError) as e:
            conn.sock.close()
            if conn.used:
                raise StaleConnection("the server closed the kept-alive connection before "
                                      "answering (the request was not resent)") from e
            raise ConnectionError("the server closed the connection before answering") from e
        except BaseException:
            conn.sock.close()
            raise
        conn.used += 1
        if reusable and not self.fresh:
            self._connections[origin] = conn
        else:
            conn.sock.close()
        self._keep_cookies(answer.headers)
        return answer

    def _connect(self, scheme: str, host: str, port: int, timeout: float) -> _Connection:
        sock = socket.create_connection((host, port), timeout=timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if scheme == "https":
            sock = self._tls.wrap_socket(sock, server_hostname=host)
        return _Connection(sock)

    @staticmethod
    def _read(conn: _Connection, method: str) -> tuple[Answer, bool]:
        status_line = conn.line()
        version, _, rest = status_line.partition(b" ")
        status = int(rest[:3])
        pairs = []
        while line := conn.line():
            name, _, value = line.partition(b":")
            pairs.append((name.decode("latin-1").strip(), value.decode("latin-1").strip()))
        headers = Headers(pairs)
        keep = version == b"HTTP/1.1" and headers.get("connection", "").lower() != "close"
        if method == "HEAD" or status in (204, 304) or 100 <= status < 200:
            return Answer(status, headers, b""), keep
        if "chunked" in headers.get("transfer-encoding", "").lower():
            body = b""
            while size := int(conn.line().split(b";")[0], 16):
                body += conn.take(size)
                conn.take(2)
            while conn.line():  # trailers
                pass
            return Answer(status, headers, body), keep
        if (length := headers.get("content-length")) is not None:
            return Answer(status, headers, conn.take(int(length))), keep
        with contextlib.suppress(EOFError):  # the body runs until the server closes
            while True:
                conn.read_more()
        return Answer(status, headers, conn.buffer), False

    def _keep_cookies(self, headers: Headers) -> None:
        for name, value in headers.pairs:
            if name.lower() == "set-cookie":
                key, _, rest = value.partition("=")
                self._cookies[key.strip()] = rest.split(";", 1)[0].strip()

    def close(self) -> None:
        for conn in self._connections.values():
            conn.sock.close()
        self._connections.clear()
