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
    return _group(re.search(rule.greeting_regex, greeting, re.MULTILINE))
