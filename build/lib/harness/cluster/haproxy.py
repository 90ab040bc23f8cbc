"""The load balancer's configuration, generated: the sound cluster's and the LB mutants'.

HAProxy balances HTTP and HTTPS round-robin over the nodes, checks their health through the
administrative health service, and retries a failed idempotent request on another node
(`retries` + `option redispatch` + `retry-on`), which is what "HTTP requests are redirected to
another node" means at the entry point. It never fronts FTP or SMTP; the `ftp_fronted` and
`smtp_fronted` mutants add exactly that mistake. The `ftp_entry_sticky` variants give FTP a
cluster address balanced by source address, failing a dead node's sessions (sound) or
sending them to another node (broken).
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
    fronted_base_port: int = 21000
    ftp_entry_port: int = 2121


def fronted_port(settings: LbSettings, protocol: str, index: int) -> int:
    """The port of the frontend that, under the fronted mutants, stands for node `index`."""
    return settings.fronted_base_port + (0 if protocol == "ftp" else 500) + index


# Mutants that change how the balancer treats failing nodes, and those that balance HTTPS at
# layer 4 (TCP passthrough: the nodes terminate TLS, the balancer sees connections).
NO_REDISPATCH = ("lb_no_redispatch", "lb_starves_last_node", "lb_holds_paused")
# FTP at the cluster address, balanced by source address (the usual way, for passive data
# connections): sound when a failed node's sessions fail, broken when they fail over.
FTP_ENTRY = ("ftp_entry_sticky", "ftp_entry_sticky_failover")
TCP_HTTPS = ("lb_tcp", "lb_tcp_skewed")


# A sound balancer that fails over slowly: it retries a refused connection on the same node
# three times, half a second apart (HAProxy's turn-around is min(timeout connect, 1 s)), and
# only the last retry goes to another node. Requests are late, never lost.
SLOW_RETRY = "lb_slow_retry"
# A balancer that fails over for dead nodes only: a node that answers 503 (in maintenance) is
# neither retried elsewhere nor, checked by TCP connect alone, taken out of rotation.
PASSES_503 = "lb_passes_503"


def _retry(mutant: str | None, mode: str) -> list[str]:
    if mutant in NO_REDISPATCH:
        return ["    retries 0"]
    if mutant == PASSES_503:
        return ["    retries 3", "    option redispatch 1", "    retry-on conn-failure empty-response response-timeout"]
    if mutant == SLOW_RETRY:
        return ["    retries 3", "    option redispatch -1"] + \
            (["    retry-on all-retryable-errors"] if mode == "http" else [])
    # retry-on is HTTP's: in TCP mode only a failed connection can be retried elsewhere
    return ["    retries 3", "    option redispatch 1"] + \
        (["    retry-on all-retryable-errors"] if mode == "http" else [])


def _weight(mutant: str | None, proto: str, index: int, count: int) -> str:
    if mutant == "lb_skewed" or (mutant == "lb_tcp_skewed" and proto == "https"):
        return f" weight {4 if index == 0 else 1}"
    if mutant == "lb_starves_last_node":
        return f" weight {1 if index == count - 1 else 100}"
    return ""


def haproxy_config(settings: LbSettings, servers: list[Server], mutant: str | None = None) -> str:
    sloppy = mutant == "lb_no_redispatch"
    check = "check inter 2s fall 3 rise 2" if sloppy else \
        "check inter 1s fall 3 rise 2" if mutant == SLOW_RETRY else \
        "check inter 200 fastinter 100 fall 2 rise 2"
    https_mode = "tcp" if mutant in TCP_HTTPS else "http"
    # A sound balancer gives up on a node's answer after 1 s and asks another node, so a
    # paused node delays a request by about that; `lb_holds_paused` waits for it to wake.
    server_timeout = "10s" if mutant == "lb_holds_paused" else "2s" if sloppy else "1s"
    https_bind = "" if https_mode == "tcp" else f" ssl crt {settings.cert_pem}"
    lines = [
        "global",
        "    maxconn 4096",
        "    nbthread 1",
        "",
        "defaults",
        "    mode http",
        f"    timeout connect {'500ms' if mutant == SLOW_RETRY else '300ms'}",
        "    timeout client 30s",
        f"    timeout server {server_timeout}",
        "    timeout check 500ms",
        "    option dontlognull",
        "",
        "frontend http_in",
        f"    bind {settings.address}:{settings.http_port}",
        "    default_backend nodes_http",
        "",
        "frontend https_in",
        f"    mode {https_mode}",
        f"    bind {settings.address}:{settings.https_port}{https_bind}",
        "    default_backend nodes_https",
        "",
    ]
    for proto in ("http", "https"):
        mode = https_mode if proto == "https" else "http"
        lines += [f"backend nodes_{proto}", f"    mode {mode}", "    balance roundrobin"]
        if mutant != PASSES_503:
            lines += [f"    option httpchk GET {HEALTH_PATH}", "    http-check expect status 200"]
        lines += _retry(mutant, mode)
        for i, s in enumerate(servers):
            host, port = getattr(s, proto)
            if proto == "http":
                tls = ""
            elif mode == "tcp":  # pass TLS through; check the node's health over TLS
                tls = f" check-ssl verify required ca-file {settings.ca_file}"
            else:
                tls = f" ssl verify required ca-file {settings.ca_file}"
            lines.append(f"    server {s.name} {host}:{port}{tls} {check}"
                         f"{_weight(mutant, proto, i, len(servers))}")
        lines.append("")
    if mutant in FTP_ENTRY:
        fails_over = mutant == "ftp_entry_sticky_failover"
        lines += ["listen ftp_entry", "    mode tcp", f"    bind {settings.address}:{settings.ftp_entry_port}",
                  "    balance source", "    timeout server 30s"]
        lines += ["    retries 3", "    option redispatch 1"] if fails_over else []
        lines += [f"    server {s.name} {s.ftp[0]}:{s.ftp[1]}{' ' + check if fails_over else ''}"
                  for s in servers] + [""]
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
