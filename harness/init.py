"""`harness init`: a topology written from the running cluster, each line saying how it was found.

A user otherwise writes the identity rules, greetings and claims by hand from the README, and
each guess costs a probe round trip. Here the cluster is asked: a bounded number of requests
to each node given and through the entry, each node's FTP and SMTP greeting read, an
anonymous FTP login tried, TLS verified. What names the node is found in this order: a header
whose value is steady on a node and differs between nodes, a JSON field alike, else the word
of the body that does (turned into a regex with a `node` group). The pure finders below take
what was answered; `discover` does the asking; `render` writes the commented file.

Only the addresses given are contacted (loopback unless `--allow-remote-targets`).
"""

from __future__ import annotations

import ftplib
import json
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import requests
import urllib3

from harness.config import DEFAULT_PORTS, SCHEMA_FILE, is_loopback
from harness.containers import Container, control_template
from harness.errors import HarnessError
from harness.properties import Property
from harness.traffic.clients import read_greeting
from harness.victims import balancing_unit

SAMPLES = 3  # requests to each node (fresh connections), to tell a steady value from a changing one
ENTRY_SAMPLES = 6
TIMEOUT_S = 3.0
FTP_PORTS = (21, 2121)
SMTP_PORTS = (25, 2525, 587)
# Headers that differ between nodes, or within one, without naming the node.
NOT_IDENTITY = {"date", "expires", "last-modified", "etag", "content-length", "set-cookie",
                "age", "content-md5", "x-request-id", "x-correlation-id", "keep-alive",
                "connection", "content-type", "accept-ranges", "vary", "cache-control"}
TOKEN = re.compile(r"[A-Za-z0-9_.:-]{1,64}")
NODE_WORD = r"(?P<node>[A-Za-z0-9_.-]+)"


@dataclass(frozen=True)
class Sample:
    """One answer of a node: its headers (names lower-cased) and body."""

    headers: Mapping[str, str]
    body: str


@dataclass
class HttpFinding:
    rule: dict[str, str]
    """identity.http: header, json_field or regex"""
    how: str
    ids: dict[str, str]
    """node URL -> the node's id, as the rule reads it"""


def _steady_and_distinct(values: Mapping[str, list[str | None]]) -> dict[str, str] | None:
    """url -> value when every node gives one value every time and no two nodes the same."""
    picked = {}
    for url, seen in values.items():
        if len(set(seen)) != 1 or seen[0] is None or not TOKEN.fullmatch(seen[0]):
            return None
        picked[url] = seen[0]
    return picked if len(set(picked.values())) == len(picked) else None


def _json_scalars(text: str) -> dict[str, str]:
    """Every scalar of a JSON body by its dotted path (objects only, not lists)."""
    try:
        value = json.loads(text)
    except ValueError:
        return {}
    found: dict[str, str] = {}

    def walk(v: object, path: str) -> None:
        if isinstance(v, dict):
            for k, sub in v.items():
                walk(sub, f"{path}.{k}" if path else str(k))
        elif isinstance(v, (str, int)) and not isinstance(v, bool) and path:
            found[path] = str(v)

    walk(value, "")
    return found


def _body_regex(samples: Mapping[str, Sequence[Sample]]) -> tuple[str, dict[str, str]] | None:
    """A regex over the body whose `node` group is the one word that differs between nodes,
    anchored on up to two words before it that do not."""
    words = {url: [re.findall(r"\S+", s.body) for s in seen] for url, seen in samples.items()}
    if any(len({tuple(w) for w in seen}) != 1 for seen in words.values()):
        return None  # a body that changes from answer to answer on one node
    bodies = [seen[0] for seen in words.values()]
    if len({len(b) for b in bodies}) != 1:
        return None
    differ = [i for i in range(len(bodies[0])) if len({b[i] for b in bodies}) > 1]
    if len(differ) != 1:
        return None
    i = differ[0]
    before = bodies[0][max(0, i - 2):i]
    ids = {}
    for url, seen in words.items():
        word = re.match(r"[A-Za-z0-9_.-]+", seen[0][i].strip("\"'<>()[]{},;"))
        if word is None:
            return None
        ids[url] = word.group(0)
    pattern = r"\s+".join(_literal(w) for w in before) + (r"\s+" if before else r"\b") + NODE_WORD
    regex = re.compile(pattern)
    for url, seen in samples.items():
        found = regex.search(seen[0].body)
        if found is None or found.group("node") != ids[url]:
            return None
    return (pattern, ids) if len(set(ids.values())) == len(ids) else None


def find_http_identity(samples: Mapping[str, Sequence[Sample]]) -> HttpFinding | None:
    """What names the node in its answers, by the order the README gives: a header, a JSON
    field, a word of the body. `samples`: each node's answers (its URL as the key)."""
    names = set.intersection(*(set(s.headers) for seen in samples.values() for s in seen))
    for name in sorted(names - NOT_IDENTITY):
        ids = _steady_and_distinct({u: [s.headers.get(name) for s in seen] for u, seen in samples.items()})
        if ids:
            return HttpFinding({"header": name}, f"header {name} names each node alike on every answer", ids)
    fields = [_json_scalars(s.body) for seen in samples.values() for s in seen]
    common = set.intersection(*(set(f) for f in fields)) if fields else set()
    for path in sorted(common, key=lambda p: (p.count("."), p)):
        ids = _steady_and_distinct({u: [_json_scalars(s.body).get(path) for s in seen]
                                    for u, seen in samples.items()})
        if ids:
            return HttpFinding({"json_field": path}, f"JSON field {path} names each node", ids)
    found = _body_regex(samples)
    if found:
        pattern, ids = found
        return HttpFinding({"regex": pattern}, "the one word of the body that differs between nodes", ids)
    return None


def _literal(text: str) -> str:
    """`text` as a regex matching itself, spaces left readable (the file is read by people)."""
    return re.sub(r"([.^$*+?{}\[\]\\|()])", r"\\\1", text)


def _steady_words(text: str) -> str:
    """`text` up to its first word with a digit in it: a version, a time or a count, which
    change between greetings (Exim's names the second it was sent in; greetings read within
    one second agree on it)."""
    return re.match(r"(?:\s*[^\s\d]+(?=\s|$))*", text).group(0)  # type: ignore[union-attr]


def greeting_regex(greetings: Mapping[str, str]) -> str | None:
    """A regex over the greetings (as sent: every line with its code) whose `node` group is
    each node's id: the line that names it, the text before the id kept as the anchor."""
    befores, afters = set(), []
    for node, greeting in greetings.items():
        line = next((l for l in greeting.splitlines() if re.search(rf"\b{re.escape(node)}\b", l)), None)
        if line is None:
            return None
        at = line.index(node)
        befores.add(line[4:at])
        afters.append(line[at + len(node):])
    if len(befores) != 1:
        return None
    before, after = befores.pop(), _steady_words(os.path.commonprefix(afters))
    pattern = rf"^220[ -]{_literal(before)}{NODE_WORD}{_literal(after)}"
    regex = re.compile(pattern, re.MULTILINE)
    ok = all((m := regex.search(g)) and m.group("node") == n for n, g in greetings.items())
    return pattern if ok else None


def cookie_affinity(fresh: Sequence[str], cookied: Sequence[str], cookies: Sequence[str]) -> str | None:
    """A note when answers carrying the cookies the entry set all come from one node while
    answers without them spread: affinity by cookie."""
    if cookies and len(set(fresh)) > 1 and len(set(cookied)) == 1:
        return (f"{len(cookied)} requests carrying the cookies the entry set ({', '.join(sorted(cookies))}) "
                f"were all answered by {cookied[0]}, fresh ones without by {len(set(fresh))} nodes: "
                "affinity by cookie")
    return None


# -- asking the cluster ------------------------------------------------------------------------


@dataclass
class Found:
    """What `discover` found, for `render`."""

    entry: dict[str, str]
    path: str
    http: HttpFinding
    nodes: list[dict[str, str]]
    """per node: id, http, https, ftp, smtp"""
    ftp_regex: str | None = None
    smtp_regex: str | None = None
    ftp_anonymous: bool | None = None
    tls: dict[str, object] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    balancing: tuple[str | None, str] = (None, "")
    """what the entry balances, and how that was found"""
    docker: dict[str, str] = field(default_factory=dict)
    """node id -> control.docker, where the nodes were found as containers"""


def _session() -> requests.Session:
    s = requests.Session()
    s.trust_env = False
    s.headers["Connection"] = "close"
    return s


def _get(url: str, verify: str | bool) -> Sample:
    """One answer over a fresh connection, no cookies kept."""
    return _sample(_session(), url, verify)


def _sample(session: requests.Session, url: str, verify: str | bool = True) -> Sample:
    try:
        r = session.get(url, timeout=TIMEOUT_S, verify=verify, allow_redirects=False)
    except requests.exceptions.SSLError as e:
        raise _TlsRefused(str(e)) from None
    except requests.RequestException as e:
        raise HarnessError(f"{url} did not answer: {type(e).__name__}") from None
    return Sample({k.lower(): v for k, v in r.headers.items()}, r.text)


class _TlsRefused(Exception):
    pass


def _verify_for(url: str, ca_file: str | None, insecure: bool) -> tuple[str | bool, str]:
    """How HTTPS at `url` verifies: the system CAs, else the CA file given, else (asked for)
    not at all; a certificate that verifies against neither is one sentence."""
    for verify, how in ((True, "verified against the system CAs"),
                        *(((ca_file, f"verified against {ca_file}"),) if ca_file else ())):
        try:
            _get(url, verify)
            return verify, how
        except _TlsRefused:
            continue
    if insecure:  # asked for, and written in the file: urllib3's warning per request says no more
        urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
        return False, "NOT verified (--insecure): certificates and names are not checked"
    raise HarnessError(f"TLS of {url} does not verify against the system CAs"
                       f"{' nor ' + ca_file if ca_file else ''}: give the cluster's CA with "
                       "--ca-file (or --insecure, and nothing about certificates is checked)")


def _ftp_anonymous(host: str, port: int) -> bool:
    try:
        ftp = ftplib.FTP()
        ftp.connect(host, port, timeout=TIMEOUT_S)
        try:
            ftp.login()
            return True
        finally:
            ftp.close()
    except (ftplib.Error, OSError, EOFError):
        return False


def _first_greeting(host: str, ports: Sequence[int]) -> tuple[int, str] | None:
    for port in ports:
        greeting = read_greeting(host, port)
        if greeting:
            return port, greeting
    return None


def discover(entry: str, nodes: Sequence[str], path: str = "/", entry_https: str | None = None,
             nodes_https: Sequence[str] = (), ca_file: str | None = None, insecure: bool = False,
             ftp_ports: Sequence[int] = FTP_PORTS, smtp_ports: Sequence[int] = SMTP_PORTS,
             allow_remote: bool = False, containers: Sequence[Container] = (),
             greeters: Sequence[Mapping[str, str]] = ()) -> Found:
    """`greeters` (in the nodes' order: protocol -> URL, from --node-ftp and --node-smtp or
    as `--docker` found them published) say where each node's FTP and SMTP are; what they do
    not say is looked for on the node's host at the usual ports. `containers` (from
    `--docker`) give each node's `control.docker`."""
    if len(nodes) < 2:
        raise HarnessError("give at least two nodes (--node URL, once per node, or --docker to "
                           "find them among the containers publishing on loopback): what names "
                           "a node is found by comparing their answers")
    if nodes_https and len(nodes_https) != len(nodes):
        raise HarnessError(f"--node-https is given {len(nodes_https)} times for {len(nodes)} "
                           "--node: give it once per node, in the same order, or not at all")
    plain = [u for u in (entry, *nodes) if not u.startswith("http://")]
    if plain:
        raise HarnessError(f"{plain[0]} is not an http:// URL: --entry and --node take HTTP "
                           "addresses, --entry-https and --node-https the HTTPS ones")
    urls = [entry, *nodes, *([entry_https] if entry_https else []), *nodes_https,
            *(url for greeter in greeters for url in greeter.values())]
    for url in urls:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https", "ftp", "smtp") or not parts.hostname:
            raise HarnessError(f"{url!r} is not an http://, https://, ftp:// or smtp:// URL")
        if not allow_remote and not is_loopback(parts.hostname):
            raise HarnessError(f"{url} is not on a loopback address; pass --allow-remote-targets "
                               "to contact it")
    base = path if path.startswith("/") else f"/{path}"
    samples = {n: [_get(n.rstrip("/") + base, True) for _ in range(SAMPLES)] for n in nodes}
    http = find_http_identity(samples)
    if http is None:
        raise HarnessError(
            f"nothing in the answers to GET {base} names the node: no header, JSON field or "
            "word of the body differs between the nodes and stays the same on each; add one "
            "(a header such as X-Node-Id in the web tier, or a service that answers with the "
            "server's name, as docs/topology.md shows for Integration Server) and give its path with --path")
    found = Found({"http": entry}, base, http, [])
    ids = set(http.ids.values())
    named = [_name(http, _get(entry.rstrip("/") + base, True)) for _ in range(ENTRY_SAMPLES)]
    if None in named:
        raise HarnessError(f"an answer of the entry {entry} to GET {base} names no node by "
                           f"{http.how}: is the entry in front of these nodes?")
    stray = sorted({n for n in named if n is not None} - ids)
    if stray:
        raise HarnessError(f"the entry {entry} answered from {', '.join(stray)}, which is none of "
                           f"the nodes given ({', '.join(sorted(ids))}): give every node with --node")
    kept_session, cookie_session = requests.Session(), _session()
    kept_session.trust_env = False
    kept = [_name(http, _sample(kept_session, entry.rstrip("/") + base)) for _ in range(ENTRY_SAMPLES)]
    cookied = [_name(http, _sample(cookie_session, entry.rstrip("/") + base)) for _ in range(ENTRY_SAMPLES)]
    found.balancing = balancing_unit([n for n in kept if n], [n for n in named if n])
    affinity = cookie_affinity([n for n in named if n], [n for n in cookied if n],
                               list(cookie_session.cookies.keys()))
    if affinity:
        found.notes.append(affinity)
    verify: str | bool = True
    first_https = entry_https or (nodes_https[0] if nodes_https else None)
    if first_https:
        verify, how = _verify_for(first_https.rstrip("/") + base, ca_file, insecure)
        found.tls = {"ca_file": ca_file} if isinstance(verify, str) else \
            {"insecure": True} if verify is False else {}
        found.notes.append(f"HTTPS at {first_https} {how}")
    if entry_https:
        found.entry["https"] = entry_https
    ftp, smtp = {}, {}
    for i, url in enumerate(nodes):
        node_id, host = http.ids[url], urlsplit(url).hostname or ""
        node = {"id": node_id, "http": url.rstrip("/")}
        if nodes_https:
            node["https"] = nodes_https[i].rstrip("/")
            try:
                _get(node["https"] + base, verify)
            except _TlsRefused as e:
                raise HarnessError(f"TLS of {node['https']} does not verify as {first_https}'s "
                                   f"does ({str(e)[:120]})") from None
        for proto, ports, greetings in (("ftp", ftp_ports, ftp), ("smtp", smtp_ports, smtp)):
            given = greeters[i].get(proto) if greeters else None
            if given:  # where the user or the engine says the node's server is
                at = urlsplit(given)
                got = _first_greeting(at.hostname or "", [at.port or DEFAULT_PORTS[proto]])
                where = at.hostname or ""
            else:
                got, where = _first_greeting(host, ports), host
            if got:
                node[proto], greetings[node_id] = f"{proto}://{where}:{got[0]}", got[1]
        found.nodes.append(node)
    if containers:
        found.docker = control_template({http.ids[u]: c.name for u, c in zip(nodes, containers)})
    found.ftp_regex = greeting_regex(ftp) if ftp else None
    found.smtp_regex = greeting_regex(smtp) if smtp else None
    _entry_greetings(found, urlsplit(entry).hostname or "", ftp_ports, smtp_ports)
    for proto, greetings, regex in (("FTP", ftp, found.ftp_regex), ("SMTP", smtp, found.smtp_regex)):
        if greetings and regex is None:
            found.notes.append(f"the {proto} greetings do not name the nodes ({', '.join(sorted(ids))}): "
                               f"identity.{proto.lower()}.greeting_regex is left for you to write")
    if ftp:
        first = next(n for n in found.nodes if "ftp" in n)
        parts = urlsplit(first["ftp"])
        found.ftp_anonymous = _ftp_anonymous(parts.hostname or "", parts.port or 21)
    return found


def _entry_greetings(found: Found, host: str, ftp_ports: Sequence[int], smtp_ports: Sequence[int]) -> None:
    """FTP or SMTP at the cluster address: a greeting on the entry's host that names one of
    the nodes by their regex (a host the nodes also use is not looked at: its ports are theirs)."""
    if any(urlsplit(url).hostname == host for n in found.nodes for p, url in n.items() if p != "id"):
        return
    ids = {n["id"] for n in found.nodes}
    for proto, ports, regex in (("ftp", ftp_ports, found.ftp_regex), ("smtp", smtp_ports, found.smtp_regex)):
        got = _first_greeting(host, ports) if regex else None
        m = re.search(regex, got[1], re.MULTILINE) if got and regex else None
        if got and m and m.group("node") in ids:
            found.entry[proto] = f"{proto}://{host}:{got[0]}"
            found.notes.append(f"the entry's host greets on {proto.upper()} at port {got[0]} naming "
                               f"{m.group('node')}: {proto.upper()} is served at the cluster address too")


def _name(http: HttpFinding, sample: Sample) -> str | None:
    rule = http.rule
    if "header" in rule:
        return sample.headers.get(rule["header"])
    if "json_field" in rule:
        return _json_scalars(sample.body).get(rule["json_field"])
    m = re.search(rule["regex"], sample.body)
    return m.group("node") if m else None


# -- the file ------------------------------------------------------------------------------------


def _q(value: object) -> str:
    return json.dumps(value)  # a YAML flow scalar that keeps every character


CONTROL = "nodes[].control (kill and restart commands, docker:, or ssh: with pidfile and start)"
ENGINE = "a network engine: toxiproxy, or nodes[].control.ssh for kernel rules on the nodes' hosts"


def claims(found: Found) -> tuple[list[Property], list[tuple[str, str, str]]]:
    """The properties the written file can check, and those it cannot yet, each with what it
    would need: a claim the file cannot back ends in skips, never a harness error."""
    docker = bool(found.docker)
    here = all(is_loopback(urlsplit(n["http"]).hostname or "") for n in found.nodes if "http" in n)
    kernel = docker or here  # kernel rules in the containers, or on this host's loopback
    ftp, smtp = (all(p in n for n in found.nodes) for p in ("ftp", "smtp"))
    made, wanting = [Property.C1], []
    for prop, ok, needs in (
            (Property.C2, docker or kernel, f"{CONTROL}, or {ENGINE}"),
            (Property.C3, "https" in found.entry and (docker or kernel),
             "entry.https" if "https" not in found.entry else f"{CONTROL}, or {ENGINE}"),
            (Property.C4, kernel, ENGINE),
            (Property.C5, docker, CONTROL),
            (Property.C6, ftp and docker, CONTROL if ftp else "every node's ftp endpoint, and " + CONTROL),
            (Property.C7, smtp and docker, CONTROL if smtp else "every node's smtp endpoint, and " + CONTROL)):
        if ok:
            made.append(prop)
        else:
            wanting.append((prop, prop.promise, needs))
    wanting += [(prop, prop.promise, f"evidence.{field} (docs/topology.md)") for prop, field in (
        (Property.C8, "redirect"), (Property.C9, "admin"), (Property.C10, "state"),
        (Property.C11, "manifest"), (Property.C12, "pools"), (Property.C13, "scale"),
        (Property.C14, "side_effects"))]
    return made, wanting


def render(found: Found, ftp_user: str | None = None, ftp_password_env: str | None = None,
           remote: bool = False) -> str:
    """The topology, commented line by line with what was found and how."""
    flag = " --allow-remote-targets" if remote else ""
    lines = [f"# yaml-language-server: $schema={SCHEMA_FILE}",
             "# Written by `harness init` from what the cluster answered; check it with",
             f"#   harness probe --topology THIS_FILE{flag}",
             *(["# Its addresses are not loopback ones: every command given this file needs",
                "# --allow-remote-targets, as init did."] if remote else []),
             "entry:"]
    lines += [f"  {proto}: {_q(url)}" for proto, url in found.entry.items()]
    lines.append("nodes:")
    for node in found.nodes:
        eps = ", ".join(f"{p}: {_q(node[p])}" for p in ("http", "https", "ftp", "smtp") if p in node)
        lines += [f"  - id: {_q(node['id'])}      # as the node names itself ({found.http.how})",
                  f"    endpoints: {{{eps}}}"]
        if node["id"] in found.docker:
            lines.append(f"    control: {{docker: {_q(found.docker[node['id']])}}}      "
                         "# found: the container publishing these endpoints")
    unit, how = found.balancing
    lines += [f"balancing: {unit}      # found: {how}" if unit else
              f"# balancing: found out by each run ({how})"]
    lines += ["http:", f"  request: {{path: {_q(found.path)}}}      # what load and identity send",
              "identity:"]
    (key, value), = found.http.rule.items()
    lines.append(f"  http: {{{key}: {_q(value)}}}      # found: {found.http.how}")
    for proto, regex in (("ftp", found.ftp_regex), ("smtp", found.smtp_regex)):
        if regex:
            lines.append(f"  {proto}: {{greeting_regex: {_q(regex)}}}      # the line of the greeting that names the node")
    if any("ftp" in n for n in found.nodes):
        if ftp_user:
            lines += ["ftp:", f"  user: {_q(ftp_user)}",
                      f"  password_env: {_q(ftp_password_env or 'FTP_PASSWORD')}      # the password, from the environment only"]
        elif found.ftp_anonymous:
            lines += ["ftp: {anonymous: true}      # found: an anonymous login was accepted"]
        else:
            lines += ["# ftp: an anonymous login was refused, so the harness's demo login (harness/harness)",
                      "# is what the probe will try; name your user and the environment variable",
                      "# holding its password (never the password itself), e.g.",
                      "# ftp: {user: USER, password_env: FTP_PASSWORD}"]
    if found.tls:
        (key, value), = found.tls.items()
        lines += ["tls:", f"  {key}: {_q(value)}      # {'; '.join(n for n in found.notes if n.startswith('HTTPS'))}"]
    made, wanting = claims(found)
    lines += ["# What this file can check, by what was found: balance; kills, pauses and restarts",
              "# through the Docker engine where the nodes are containers; network faults by kernel",
              "# rules where the nodes are containers or on this host's loopback.",
              f"claims: [{', '.join(made)}]"]
    if wanting:
        lines.append("# Not claimed: what this file cannot check yet, and what each needs. Add it, then the claim:")
        lines += [f"#   {prop} {what}: {needs}" for prop, what, needs in wanting]
    lines += [f"# note: {n}" for n in found.notes if not n.startswith("HTTPS")]
    return "\n".join(lines) + "\n"
