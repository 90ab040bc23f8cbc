"""Which services a node may redirect, and where a service lives.

Integration Server keeps its redirect exclusions in `config/redir.cnf`: an IData XML record
whose `<value name="PREFIX">false</value>` entries switch redirection off for services whose
names start with PREFIX. The adapter documentation asks for `wm.art` to be there, so that
administrative services always run on the node addressed.
"""

from __future__ import annotations

import re
from pathlib import Path

REDIR_CNF_TEMPLATE = """<?xml version="1.0" encoding="UTF-8"?>
<IDataXMLCoder version="1.0">
  <record javaclass="com.wm.data.ISMemDataImpl">
{values}
  </record>
</IDataXMLCoder>
"""

_VALUE = re.compile(r'<value\s+name="([^"]+)">\s*(true|false)\s*</value>', re.IGNORECASE)

# Service namespace prefix -> the package that provides it.
SERVICE_PACKAGES: dict[str, str] = {
    "wm.art.": "WmART",
    "harness.demo:": "HarnessDemo",
    "harness.extras:": "HarnessExtras",
}


def render_redir_cnf(excluded_prefixes: list[str]) -> str:
    values = "\n".join(f'    <value name="{p}">false</value>' for p in excluded_prefixes)
    return REDIR_CNF_TEMPLATE.format(values=values)


def read_exclusions(path: Path) -> tuple[str, ...]:
    """Prefixes whose services must never be redirected."""
    if not path.exists():
        return ()
    return tuple(name for name, flag in _VALUE.findall(path.read_text()) if flag.lower() == "false")


def is_excluded(service: str, exclusions: tuple[str, ...]) -> bool:
    return any(service == p or service.startswith((p + ".", p + ":")) for p in exclusions)


def package_of(service: str) -> str | None:
    for prefix, package in SERVICE_PACKAGES.items():
        if service.startswith(prefix):
            return package
    return None
