"""Secrets (passwords, tokens): read from the environment variables a topology names, and kept
out of everything the harness writes.

A topology names a variable (`password_env: IS_PASSWORD`), never a value, so the file, the
load plans written from it and the report carry names only. Every value read is remembered
in this process so that `redact` can blank it out of error texts that come from elsewhere
(a server's reply, a command's output) before they reach a record, a log or a report.
"""

from __future__ import annotations

import os

from harness.errors import ConfigurationError

MASK = "***"
_read: set[str] = set()


def secret(env: str, field: str) -> str:
    """The value of environment variable `env`, which topology field `field` names."""
    value = os.environ.get(env)
    if not value:
        raise ConfigurationError(f"environment variable {env} (named by {field}) is not set")
    _read.add(value)
    return value


def redact(text: str) -> str:
    """`text` with every secret this process has read replaced by a mask."""
    for value in _read:
        text = text.replace(value, MASK)
    return text
