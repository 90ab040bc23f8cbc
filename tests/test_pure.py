"""Pure pieces: the HAProxy configuration, redirect exclusions, identity rules, the log."""

from pathlib import Path

from harness.cluster.haproxy import LbSettings, Server, haproxy_config
from harness.config import GreetingIdentity, HttpIdentity
from harness.sut.redirect import is_excluded, package_of, read_exclusions, render_redir_cnf
from harness.traffic.identity import node_from_greeting, node_from_http, wire_greeting
from harness.history.requests import RequestLog, RequestRecord

LB = LbSettings("127.0.0.1", 8080, 8443, Path("lb.pem"), Path("ca.pem"))
SERVERS = [Server(f"node{i}", ("h", 1), ("h", 2), ("h", 3), ("h", 4)) for i in (1, 2)]


def test_sound_lb_retries_redispatches_and_never_fronts_ftp_or_smtp():
    cfg = haproxy_config(LB, SERVERS)
    assert "option redispatch" in cfg and "retries 3" in cfg and "retry-on" in cfg
    assert "mode tcp" not in cfg and "weight" not in cfg
    assert "ssl verify required ca-file ca.pem" in cfg


def test_lb_mutants_change_only_what_they_say():
    assert "retries 0" in haproxy_config(LB, SERVERS, "lb_no_redispatch")
    assert "option redispatch" not in haproxy_config(LB, SERVERS, "lb_no_redispatch")
    assert "weight 4" in haproxy_config(LB, SERVERS, "lb_skewed")
    ftp = haproxy_config(LB, SERVERS, "ftp_fronted")
    assert "listen ftp_node1" in ftp and "backup" in ftp and "smtp_" not in ftp
    assert "listen smtp_node2" in haproxy_config(LB, SERVERS, "smtp_fronted")


def test_redir_cnf_round_trip(tmp_path):
    path = tmp_path / "redir.cnf"
    path.write_text(render_redir_cnf(["wm.art"]))
    exclusions = read_exclusions(path)
    assert exclusions == ("wm.art",)
    assert is_excluded("wm.art.admin:health", exclusions)
    assert not is_excluded("wm.artist:x", exclusions)
    assert not is_excluded("harness.demo:echo", exclusions)
    assert read_exclusions(tmp_path / "missing.cnf") == ()
    assert package_of("harness.demo:echo") == "HarnessDemo" and package_of("x:y") is None


def test_identity_rules():
    assert node_from_http(HttpIdentity(header="X-Node-Id"), {"X-Node-Id": "n1"}, "") == "n1"
    assert node_from_http(HttpIdentity(json_field="a.node"), {}, '{"a": {"node": "n2"}}') == "n2"
    assert node_from_http(HttpIdentity(json_field="node"), {}, "not json") is None
    assert node_from_http(HttpIdentity(regex=r"served by (\w+)"), {}, "x served by n3") == "n3"
    rule = GreetingIdentity(greeting_regex=r"^220 (?P<node>\S+)")
    assert node_from_greeting(rule, "220 node1 harness FTP ready") == "node1"
    assert node_from_greeting(rule, "421 busy") is None


def test_a_multi_line_greeting_names_the_node_on_any_line_as_sent():
    """FTP's and SMTP's multi-line 220: every line with its code, as on the wire, whichever
    client library read it (smtplib hands the code over once)."""
    rule = GreetingIdentity(greeting_regex=r"^220[- ]This is (?P<node>\S+)")
    assert node_from_greeting(rule, "220-Welcome\n220-This is tp3n2\n220 Ready") == "tp3n2"
    sent = wire_greeting(220, "mail.example ESMTP\nThis is tp3n2")
    assert sent == "220-mail.example ESMTP\n220 This is tp3n2"
    assert node_from_greeting(rule, sent) == "tp3n2"
    assert wire_greeting(220, "node1 ESMTP") == "220 node1 ESMTP"


def test_request_log_round_trip(tmp_path):
    log = RequestLog()
    seen = []
    log.listeners.append(seen.append)
    log(RequestRecord("http", "op", "entry", "u", 1.0, 2.0, 2.5, True, 200, "n1", redirects=["n2"]))
    log.write(tmp_path / "log.jsonl")
    again = RequestLog.read(tmp_path / "log.jsonl")
    assert again.records == log.records == seen
    assert again.records[0].duration == 0.5
