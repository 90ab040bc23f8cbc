"""Protocol clients that write one `RequestRecord` per request into a sink.

They are plain (requests, ftplib, smtplib): safe in the pytest process, and cooperative under
Locust's gevent patching, where `users` wraps them. Each operation is timed by one context
manager, `_recording`, which builds and emits exactly one record whatever happens, so a
failure can never go uncounted or be counted twice. Clients never raise for a failed request:
the record says what happened.
"""

from __future__ import annotations

import ftplib
import io
import smtplib
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any
from urllib.parse import urljoin

import requests

from harness.config import Protocol, Topology, host_port
from harness.traffic.identity import node_from_greeting, node_from_http
from harness.traffic.log import RequestRecord, Sink

MAX_REDIRECTS = 5
ENTRY = "entry"


@dataclass
class Outcome:
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
               key: str | None = None) -> Iterator[Outcome]:
    outcome = Outcome()
    start_wall, start = time.time(), time.monotonic()
    try:
        yield outcome
    except Exception as e:  # noqa: BLE001 - every failure becomes the record's error
        outcome.ok = False
        outcome.error = outcome.error or f"{type(e).__name__}: {e}"[:300]
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


def _direct_session() -> requests.Session:
    """The cluster is reached directly, never through a proxy from the environment; not
    reading the environment on every request also saves a fifth of a request's cost."""
    session = requests.Session()
    session.trust_env = False
    return session


class HttpClient:
    """HTTP/HTTPS `/invoke/<service>` calls that follow redirects by hand, to record each hop."""

    def __init__(self, topology: Topology, sink: Sink, verify: str | bool = True,
                 timeout_s: float = 5.0, session: requests.Session | None = None) -> None:
        self.topology, self.sink, self.verify, self.timeout_s = topology, sink, verify, timeout_s
        self.session = session or _direct_session()

    def call(self, service: str, endpoint: str = ENTRY, protocol: Protocol = "http",
             params: dict[str, str] | None = None, key: str | None = None) -> RequestRecord:
        url = f"{endpoint_url(self.topology, protocol, endpoint)}/invoke/{service}"
        with _recording(self.sink, protocol, service, endpoint, url, key) as out:
            target, query = url, dict(params or {})
            for _ in range(MAX_REDIRECTS + 1):
                response = self.session.get(target, params=query, timeout=self.timeout_s,
                                            verify=self.verify, allow_redirects=False)
                out.status = response.status_code
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
                out.ok = response.ok
                out.error = None if response.ok else f"HTTP {response.status_code}"
                if response.headers.get("Content-Type", "").startswith("application/json"):
                    out.detail = response.json()
        assert out.record is not None
        return out.record


class FtpClient:
    """FTP sessions to one endpoint: the connect step and each upload are records of their own."""

    def __init__(self, topology: Topology, sink: Sink, timeout_s: float = 5.0) -> None:
        self.topology, self.sink, self.timeout_s = topology, sink, timeout_s

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
    def __init__(self, client: FtpClient, endpoint: str) -> None:
        self.client, self.endpoint = client, endpoint
        self.ftp = ftplib.FTP(timeout=client.timeout_s)
        # The control connection may pass a fault proxy; data connections go to the address
        # the node names in its PASV reply, as they would to a real node behind NAT-less LB.
        self.ftp.trust_server_pasv_ipv4_address = True
        self.node: str | None = None
        self.connected = False
        host, port = host_port(endpoint_url(client.topology, "ftp", endpoint))
        self.url = f"ftp://{host}:{port}"
        with _recording(client.sink, "ftp", "connect", endpoint, self.url) as out:
            greeting = self.ftp.connect(host, port)
            out.status = int(greeting[:3])
            out.node = self.node = node_from_greeting(client.topology.identity.ftp, greeting)
            self.ftp.login("harness", "harness")
            out.ok = self.connected = True
        assert out.record is not None
        self.connect_record = out.record

    def upload(self, name: str, data: bytes) -> RequestRecord:
        with _recording(self.client.sink, "ftp", "upload", self.endpoint, self.url, key=name) as out:
            out.node = self.node
            try:
                reply = self.ftp.storbinary(f"STOR {name}", io.BytesIO(data))
                out.status, out.ok, out.detail = int(reply[:3]), reply.startswith("226"), {"reply": reply}
            except ftplib.Error as e:
                out.status, out.error = int(str(e)[:3]), str(e)
        assert out.record is not None
        return out.record

    def close(self) -> None:
        try:
            self.ftp.quit()
        except (OSError, EOFError, ftplib.Error):
            self.ftp.close()


class SmtpClient:
    """One SMTP session per message: greeting (names the node), EHLO, MAIL, RCPT, DATA."""

    def __init__(self, topology: Topology, sink: Sink, timeout_s: float = 5.0) -> None:
        self.topology, self.sink, self.timeout_s = topology, sink, timeout_s

    def send(self, endpoint: str, message_id: str, body: str = "hello",
             rcpt: str = "orders@harness.invalid") -> RequestRecord:
        host, port = host_port(endpoint_url(self.topology, "smtp", endpoint))
        with _recording(self.sink, "smtp", "send", endpoint, f"smtp://{host}:{port}",
                        key=message_id) as out:
            smtp = smtplib.SMTP(timeout=self.timeout_s)
            try:
                code, banner = smtp.connect(host, port)
                out.status = code
                out.node = node_from_greeting(self.topology.identity.smtp,
                                              f"{code} {banner.decode(errors='replace')}")
                smtp.send_message(_message(message_id, body, rcpt))
                out.status, out.ok = 250, True
            except smtplib.SMTPRecipientsRefused as e:
                out.status, reply = next(iter(e.recipients.values()))
                out.error = f"{out.status} {reply.decode(errors='replace')}"
            except smtplib.SMTPResponseException as e:
                out.status = e.smtp_code
                out.error = f"{e.smtp_code} {e.smtp_error.decode(errors='replace')}"
            finally:
                try:
                    smtp.quit()
                except (smtplib.SMTPException, OSError):
                    smtp.close()
        assert out.record is not None
        return out.record


def _message(message_id: str, body: str, rcpt: str) -> EmailMessage:
    msg = EmailMessage()
    msg["From"], msg["To"] = "harness@harness.invalid", rcpt
    msg["Subject"], msg["Message-ID"] = "conformance", f"<{message_id}>"
    msg.set_content(body)
    return msg
