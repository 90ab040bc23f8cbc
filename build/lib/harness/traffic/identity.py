"""Which node served a request, by the topology's identity rules (pure functions)."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping

from harness.config import GreetingIdentity, HttpIdentity


def _group(match: re.Match[str] | None) -> str | None:
    if match is None:
        return None
    if "node" in match.re.groupindex:
        return match.group("node")
    return match.group(1) if match.re.groups else match.group(0)


def node_from_http(rule: HttpIdentity, headers: Mapping[str, str], body: str) -> str | None:
    if rule.header:
        return headers.get(rule.header)
    if rule.json_field:
        try:
            value = json.loads(body)
        except ValueError:
            return None
        for part in rule.json_field.split("."):
            value = value.get(part) if isinstance(value, dict) else None
        return str(value) if value is not None else None
    return _group(re.search(rule.regex or "", body))


def node_from_greeting(rule: GreetingIdentity, greeting: str) -> str | None:
    """The node a greeting names; the greeting as the server sent it, every line with its
    code (`220-` on all lines of a multi-line greeting but the last), searched line by line
    (`^` starts any line)."""
    return _group(re.search(rule.greeting_regex, greeting, re.MULTILINE))


def wire_greeting(code: int, text: str) -> str:
    """A reply's lines as they came over the wire, from a client library that hands over the
    code once and the lines without it (smtplib): `220-first`, ..., `220 last`."""
    lines = text.split("\n")
    return "\n".join(f"{code}{'-' if i < len(lines) - 1 else ' '}{line}"
                     for i, line in enumerate(lines))
