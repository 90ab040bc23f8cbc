"""Protocol clients that write one `RequestRecord` per request into a sink.

They are plain (requests, ftplib, smtplib; the load generator's HTTP goes over
`harness.traffic.wire`): safe in the pytest process, and cooperative under Locust's gevent
patching, where `users` wraps them. Each operation is timed by one context
manager, `_recording`, which builds and emits exactly one record whatever happens, so a
failure can never go uncounted or be counted twice. Clients never raise for a failed request:
the record says what happened.
"""

from __future__ import annotations

import base64
import ftplib
import io
import json
import smtplib
import socket
import ssl
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.message import EmailMessage
import typing
from typing import Any
from urllib.parse import urljoin

import requests
import urllib3

from harness.commands import render
from harness.config import Protocol, Topology, host_port
from harness.evidence import Call
from harness.secrets import redact, secret
from harness.traffic.identity import node_from_greeting, node_from_http, wire_greeting
from harness.history.requests import ENTRY, RequestRecord, Sink
from harness.traffic.wire import Answer, Headers, WireTransport

MAX_REDIRECTS = 5


@dataclass
class RecordDraft:
    """What an operation fills in while `_recording` times it; `record` is set on exit."""

    ok: bool = False
    status: int | None = None
    node: str | None = None
    error: str | None = None
    redirects: list[str] = field(default_factory=list)
    detail: dict[str, Any] = field(default_factory=dict)
    record: RequestRecord | None = None


@contextmanager
def _recording(sink: Sink, protocol: str, operation: str, endpoint: str, url: str,
               key: str | None = None) -> Iterator[RecordDraft]:
    outcome = RecordDraft()
    start_wall, start = time.time(), time.monotonic()
    try:
        yield outcome
    except Exception as e:  # noqa: BLE001 - every failure becomes the record's error
        outcome.ok = False
        outcome.error = outcome.error or f"{type(e).__name__}: {e}"
    if outcome.error:
        outcome.error = redact(outcome.error)[:300]
    # A BaseException (GreenletExit when Locust stops, KeyboardInterrupt) propagates without a
    # record: the generator abandoned the request, the cluster did not fail it.
    outcome.record = RequestRecord(
        protocol=protocol, operation=operation, endpoint=endpoint, url=url,
        start_wall=start_wall, start_mono=start, end_mono=time.monotonic(),
        ok=outcome.ok, status=outcome.status, node=outcome.node, error=outcome.error,
        redirects=outcome.redirects, key=key, detail=outcome.detail)
    sink(outcome.record)


def endpoint_url(topology: Topology, protocol: Protocol, endpoint: str) -> str:
    """The base URL for `endpoint` ('entry' or a node id) over `protocol`."""
    eps = topology.entry if endpoint == ENTRY else topology.node(endpoint).endpoints
    url = eps.get(protocol)
    if url is None:
        where = "the cluster entry" if endpoint == ENTRY else f"node {endpoint}"
        raise ValueError(f"{where} has no {protocol} endpoint")
    return url


def auth_headers(topology: Topology) -> dict[str, str]:
    """The headers that authenticate as the topology says (secrets from the environment)."""
    auth, headers = topology.http.auth, {}
    if auth and auth.user and auth.password_env:
        pair = f"{auth.user}:{secret(auth.password_env, 'http.auth.password_env')}"
        headers["Authorization"] = "Basic " + base64.b64encode(pair.encode()).decode()
    if auth and auth.bearer_token_env:
        headers["Authorization"] = f"Bearer {secret(auth.bearer_token_env, 'http.auth.bearer_token_env')}"
    for header, env in (auth.headers_env if auth else {}).items():
        headers[header] = secret(env, f"http.auth.headers_env.{header}")
    return headers


class Transport(typing.Protocol):
    """Sends one HTTP request, once; never follows redirects (the client records each hop)."""

    def request(self, method: str, url: str, params: Mapping[str, str] | None = None,
                headers: Mapping[str, str] | None = None, body: str | None = None,
                timeout: float = 5.0) -> Answer: ...


class RequestsTransport:
    """`requests`, for the pytest process (probes, readiness waits, evidence), where its
    cost per call does not matter. The cluster is reached directly, never through a proxy
    from the environment."""

    def __init__(self, topology: Topology, verify: str | bool = True, fresh: bool = False) -> None:
        self.verify = verify
        self.session = requests.Session()
        self.session.trust_env = False
        self.session.headers.update(auth_headers(topology))
        tls = topology.tls
        if tls.client_cert:
            self.session.cert = (str(tls.client_cert), str(tls.client_key)) if tls.client_key \
                else str(tls.client_cert)
        if fresh:
            self.session.headers["Connection"] = "close"
        if verify is False:  # asked for (tls.insecure), and said in the probe's table once
            urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)

    def request(self, method: str, url: str, params: Mapping[str, str] | None = None,
                headers: Mapping[str, str] | None = None, body: str | None = None,
                timeout: float = 5.0) -> Answer:
        r = self.session.request(method, url, params=params, headers=headers, data=body,
                                 timeout=timeout, verify=self.verify, allow_redirects=False)
        return Answer(r.status_code, Headers(list(r.headers.items())), r.content)


def wire_transport(topology: Topology, verify: str | bool = True, fresh: bool = False) -> WireTransport:
    """The load generator's transport (`harness.traffic.wire`), set up as the topology says."""
    tls = topology.tls
    return WireTransport(verify=verify, headers=auth_headers(topology), fresh=fresh,
                         client_cert=str(tls.client_cert) if tls.client_cert else None,
                         client_key=str(tls.client_key) if tls.client_key else None)


class HttpClient:
    """HTTP/HTTPS requests that follow redirects by hand, to record each hop: the topology's
    own request (`request`: load, readiness, identity), or an Integration-Server-style
    `/invoke/<service>` call (`call`).

    `fresh_connections`: every request on a connection of its own (`Connection: close`), so
    that a balancer that balances connections (L4) sees one decision per request.
    `transport`: how requests go out (default `requests`; the load generator's users pass
    the wire transport).
    """

    def __init__(self, topology: Topology, sink: Sink, verify: str | bool = True,
                 timeout_s: float = 5.0, fresh_connections: bool = False,
                 transport: Transport | None = None) -> None:
        self.topology, self.sink, self.verify, self.timeout_s = topology, sink, verify, timeout_s
        self.transport = transport or RequestsTransport(topology, verify, fresh_connections)

    def request(self, endpoint: str = ENTRY, protocol: Protocol = "http",
                key: str | None = None) -> RequestRecord:
        """The topology's request (`http.request`); ok when it answers the expected status."""
        req = self.topology.http.request
        return self._send(f"{req.method} {req.path}", req.method, req.path, endpoint, protocol,
                          None, key, req.headers, req.body, req.expect_status)

    def call(self, service: str, endpoint: str = ENTRY, protocol: Protocol = "http",
             params: dict[str, str] | None = None, key: str | None = None) -> RequestRecord:
        """`GET /invoke/<service>`; ok on any 2xx after redirects."""
        return self._send(service, "GET", f"/invoke/{service}", endpoint, protocol, params, key)

    def send(self, call: Call, endpoint: str = ENTRY, values: dict[str, str] | None = None,
             protocol: Protocol = "http", key: str | None = None,
             keep_text: bool = False) -> RequestRecord:
        """A topology's evidence request, its `{placeholders}` filled from `values`; with
        `keep_text`, the answer's text is kept in the record's detail (as `text`)."""
        values = values or {}
        path = render(call.path, values, quote=False)
        params = {k: render(v, values, quote=False) for k, v in call.params.items()}
        body = render(call.body, values, quote=False) if call.body is not None else None
        return self._send(f"{call.method} {call.path}", call.method, path, endpoint, protocol,
                          params, key, None, body, call.expect_status, keep_text)

    def _send(self, operation: str, method: str, path: str, endpoint: str, protocol: Protocol,
              params: dict[str, str] | None, key: str | None, headers: dict[str, str] | None = None,
              body: str | None = None, expect_status: int | None = None,
              keep_text: bool = False) -> RequestRecord:
        url = f"{endpoint_url(self.topology, protocol, endpoint)}{path}"
        with _recording(self.sink, protocol, operation, endpoint, url, key) as out:
            target, query = url, dict(params or {})
            for _ in range(MAX_REDIRECTS + 1):
                response = self.transport.request(method, target, query, headers, body,
                                                  self.timeout_s)
                out.status = response.status
                out.node = node_from_http(self.topology.identity.http, response.headers,
                                          response.text)
                if not response.is_redirect:
                    break
                out.redirects.append(out.node or "?")
                if len(set(out.redirects)) < len(out.redirects):
                    out.error = "redirect loop through " + " -> ".join(out.redirects)
                    break
                target, query = urljoin(target, response.headers["Location"]), {}
            if response.is_redirect:
                out.error = out.error or f"more than {MAX_REDIRECTS} redirects"
            else:
                out.ok = response.ok if expect_status is None else \
                    response.status == expect_status
                out.error = None if out.ok else f"HTTP {response.status}"
                if keep_text:
                    out.detail = {"text": response.text}
                elif response.headers.get("Content-Type", "").startswith("application/json"):
                    out.detail = json.loads(response.body)
        assert out.record is not None
        return out.record


class FtpClient:
    """FTP sessions to one endpoint: the connect step and each upload are records of their own."""

    def __init__(self, topology: Topology, sink: Sink, timeout_s: float = 5.0) -> None:
        self.topology, self.sink, self.timeout_s = topology, sink, timeout_s
        ftp = topology.ftp
        self.user = "anonymous" if ftp.anonymous else ftp.user
        self.password = secret(ftp.password_env, "ftp.password_env") if ftp.password_env \
            else "harness@harness.invalid" if ftp.anonymous else "harness"

    @contextmanager
    def session(self, endpoint: str) -> Iterator["FtpSession"]:
        session = FtpSession(self, endpoint)
        try:
            yield session
        finally:
            session.close()

    def upload(self, endpoint: str, name: str, data: bytes) -> RequestRecord:
        """A whole session for one file: connect, log in, STOR, quit."""
        with self.session(endpoint) as s:
            return s.upload(name, data) if s.connected else s.connect_record


class FtpSession:
    """One control connection: connect and log in (one record), then uploads (one each).

    A session that could not connect or log in stays usable: each upload is then a failed
    record saying why, as a client would see it, never an exception.
    """

    def __init__(self, client: FtpClient, endpoint: str) -> None:
        self.client, self.endpoint = client, endpoint
        settings = client.topology.ftp
        self.ftp = ftplib.FTP(timeout=client.timeout_s)
        # The control connection may pass a fault proxy; data connections go to the address
        # the node names in its PASV reply, as they would to a real node behind NAT-less LB.
        self.ftp.trust_server_pasv_ipv4_address = True
        self.ftp.set_pasv(settings.passive)
        self.node: str | None = None
        self.connected = False
        host, port = host_port(endpoint_url(client.topology, "ftp", endpoint))
        self.url = f"ftp://{host}:{port}"
        with _recording(client.sink, "ftp", "connect", endpoint, self.url) as out:
            greeting = self.ftp.connect(host, port)
            out.status = int(greeting[:3])
            out.node = self.node = node_from_greeting(client.topology.identity.ftp, greeting)
            try:
                self.ftp.login(client.user, client.password)
                if settings.directory:
                    self.ftp.cwd(settings.directory)
            except ftplib.error_perm as e:
                out.status = int(str(e)[:3])
                out.error = f"login as {client.user!r} refused: {e}"
                out.detail = {"refused": "login"}
                raise
            out.ok = self.connected = True
        assert out.record is not None
        self.connect_record = out.record

    def upload(self, name: str, data: bytes) -> RequestRecord:
        with _recording(self.client.sink, "ftp", "upload", self.endpoint, self.url, key=name) as out:
            out.node = self.node
            if not self.connected:
                out.status = self.connect_record.status
                out.error = f"no session: {self.connect_record.error}"
            else:
                try:
                    reply = self.ftp.storbinary(f"STOR {name}", io.BytesIO(data))
                    out.status, out.ok = int(reply[:3]), reply.startswith("226")
                    out.detail = {"reply": reply}
                except ftplib.Error as e:
                    out.status, out.error = int(str(e)[:3]), str(e)
        assert out.record is not None
        return out.record

    def close(self) -> None:
        if self.ftp.sock is None:  # never connected, or already closed
            return
        try:
            self.ftp.quit()
        except (OSError, EOFError, ftplib.Error):
            self.ftp.close()


class SmtpClient:
    """One SMTP session per message: greeting (names the node), EHLO, [STARTTLS, AUTH], MAIL,
    RCPT, DATA, with the envelope the topology gives."""

    def __init__(self, topology: Topology, sink: Sink, timeout_s: float = 5.0,
                 verify: str | bool = True) -> None:
        self.topology, self.sink, self.timeout_s, self.verify = topology, sink, timeout_s, verify
        smtp = topology.smtp
        self.password = secret(smtp.password_env, "smtp.password_env") if smtp.password_env else None

    def send(self, endpoint: str, message_id: str, body: str = "hello") -> RequestRecord:
        return self._session(endpoint, message_id, body)

    def hello(self, endpoint: str) -> RequestRecord:
        """Greeting, EHLO, STARTTLS and AUTH as configured, then quit: no message is sent."""
        return self._session(endpoint, None, "")

    def _session(self, endpoint: str, message_id: str | None, body: str) -> RequestRecord:
        settings = self.topology.smtp
        host, port = host_port(endpoint_url(self.topology, "smtp", endpoint))
        with _recording(self.sink, "smtp", "send" if message_id else "hello", endpoint,
                        f"smtp://{host}:{port}", key=message_id) as out:
            smtp = smtplib.SMTP(timeout=self.timeout_s)
            try:
                code, banner = smtp.connect(host, port)
                out.status = code
                out.node = node_from_greeting(self.topology.identity.smtp,
                                              wire_greeting(code, banner.decode(errors="replace")))
                if settings.starttls:
                    smtp.starttls(context=_tls_context(self.verify))
                if settings.user and self.password:
                    smtp.login(settings.user, self.password)
                if message_id is None:
                    smtp.ehlo_or_helo_if_needed()
                    out.status = smtp.noop()[0]
                else:
                    smtp.send_message(_message(message_id, body, settings.sender, settings.recipient))
                    out.status = 250
                out.ok = True
            except smtplib.SMTPRecipientsRefused as e:
                out.status, reply = next(iter(e.recipients.values()))
                out.error = f"{out.status} {reply.decode(errors='replace')}"
            except smtplib.SMTPResponseException as e:
                out.status = e.smtp_code
                out.error = f"{e.smtp_code} {e.smtp_error.decode(errors='replace')}"
                if isinstance(e, smtplib.SMTPAuthenticationError):
                    out.detail = {"refused": "login"}
            finally:
                try:
                    smtp.quit()
                except (smtplib.SMTPException, OSError):
                    smtp.close()
        assert out.record is not None
        return out.record


def _tls_context(verify: str | bool) -> ssl.SSLContext:
    """What `requests` would do with `verify`, for STARTTLS."""
    if verify is False:
        context = ssl.create_default_context()
        context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
        return context
    return ssl.create_default_context(cafile=verify if isinstance(verify, str) else None)


def _message(message_id: str, body: str, sender: str, rcpt: str) -> EmailMessage:
    msg = EmailMessage()
    msg["From"], msg["To"] = sender, rcpt
    msg["Subject"], msg["Message-ID"] = "conformance", f"<{message_id}>"
    msg.set_content(body)
    return msg


GREETING_LINES = 20  # the most lines a multi-line 220 greeting is read for


def read_greeting(host: str, port: int, timeout_s: float = 3.0) -> str | None:
    """A 220 greeting as sent, all its lines (a multi-line one ends at `220 `)."""
    try:
        with socket.create_connection((host, port), timeout=timeout_s) as s:
            s.settimeout(timeout_s)
            reader, lines = s.makefile("rb"), []
            for _ in range(GREETING_LINES):
                line = reader.readline(500).decode(errors="replace").rstrip("\r\n")
                lines.append(line)
                if not line.startswith("220-"):
                    break
    except OSError:
        return None
    return "\n".join(lines) if lines and lines[0].startswith("220") else None
