"""The load balancer's configuration, generated: the sound cluster's and the LB mutants'.

HAProxy balances HTTP and HTTPS round-robin over the nodes, checks their health through the
administrative health service, and retries a failed idempotent request on another node
(`retries` + `option redispatch` + `retry-on`), which is what "HTTP requests are redirected to
another node" means at the entry point. It never fronts FTP or SMTP; the `ftp_fronted` and
`smtp_fronted` mutants add exactly that mistake.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

HEALTH_PATH = "/invoke/wm.art.admin:health"


@dataclass(frozen=True)
class Server:
    name: str
    http: tuple[str, int]
    https: tuple[str, int]
    ftp: tuple[str, int]
    smtp: tuple[str, int]


@dataclass(frozen=True)
class LbSettings:
    address: str
    http_port: int
    https_port: int
    cert_pem: Path
    ca_file: Path
    socket: Path
    fronted_base_port: int = 21000


def fronted_port(settings: LbSettings, protocol: str, index: int) -> int:
    """The port of the frontend that, under the fronted mutants, stands for node `index`."""
    return settings.fronted_base_port + (0 if protocol == "ftp" else 500) + index


def render(settings: LbSettings, servers: list[Server], mutant: str | None = None) -> str:
    sloppy = mutant == "lb_no_redispatch"
    check = "check inter 2s fall 3 rise 2" if sloppy else "check inter 200 fastinter 100 fall 2 rise 2"
    retry = ("    retries 0\n" if sloppy else
             "    retries 3\n    option redispatch 1\n    retry-on all-retryable-errors\n")

    def weight(i: int) -> str:
        return f" weight {4 if i == 0 else 1}" if mutant == "lb_skewed" else ""

    lines = [
        "global",
        "    maxconn 4096",
        "    nbthread 1",
        f"    stats socket {settings.socket} mode 600 level admin",
        "",
        "defaults",
        "    mode http",
        "    timeout connect 300ms",
        "    timeout client 30s",
        "    timeout server 2s",
        "    timeout check 500ms",
        "    option dontlognull",
        "",
        "frontend http_in",
        f"    bind {settings.address}:{settings.http_port}",
        "    default_backend nodes_http",
        "",
        "frontend https_in",
        f"    bind {settings.address}:{settings.https_port} ssl crt {settings.cert_pem}",
        "    default_backend nodes_https",
        "",
    ]
    for proto in ("http", "https"):
        lines += [f"backend nodes_{proto}", "    balance roundrobin",
                  f"    option httpchk GET {HEALTH_PATH}", "    http-check expect status 200"]
        lines += retry.rstrip("\n").split("\n")
        for i, s in enumerate(servers):
            host, port = getattr(s, proto)
            tls = f" ssl verify required ca-file {settings.ca_file}" if proto == "https" else ""
            lines.append(f"    server {s.name} {host}:{port}{tls} {check}{weight(i)}")
        lines.append("")
    for proto in ("ftp", "smtp"):
        if mutant != f"{proto}_fronted":
            continue
        for i, s in enumerate(servers):
            lines += [f"listen {proto}_{s.name}", "    mode tcp",
                      f"    bind {settings.address}:{fronted_port(settings, proto, i)}",
                      "    timeout server 30s", "    retries 3", "    option redispatch 1"]
            for j, peer in enumerate(servers):
                host, port = getattr(peer, proto)
                backup = "" if j == i else " backup"
                lines.append(f"    server {peer.name} {host}:{port} {check}{backup}")
            lines.append("")
    return "\n".join(lines) + "\n"
