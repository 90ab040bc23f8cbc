"""Node control over SSH, as Jepsen reaches its nodes: one `ssh` per command, never a shell
template the user writes.

`control.ssh` names the node's host (default: the host of its first endpoint), the login,
a key file or the agent, a known-hosts file, and optionally a bastion (`proxy_jump`) and
`sudo`. Every command the harness runs on the node's host (kill, pause, resume, restart, the
kernel faults' iptables and tc lines) becomes one argv: `ssh OPTIONS DESTINATION -- LINE`,
where LINE is the command quoted once for the far shell, so every word arrives whole.

Host keys are checked against the named file and nothing else (`StrictHostKeyChecking
yes`, the user's own known_hosts ignored); a key that does not match is one sentence
(`explain`), never a silent accept. No password is ever asked for (`BatchMode`). The key's
path may be in the topology; the key itself never is.
"""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, model_validator

# What a node's process is signalled with, by the pidfile its start command writes.
SIGNALS = {"kill": "KILL", "pause": "STOP", "resume": "CONT"}


class SshControl(BaseModel):
    """How to reach a node's host over SSH and what runs its server there."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)

    host: str | None = Field(default=None, description="default: the host of the node's first endpoint")
    user: str | None = None
    """the login (default: ssh's own)"""
    port: Annotated[int, Field(ge=1, le=65535)] = 22
    """the SSH port"""
    key_file: Path | None = Field(default=None, description="a private key's path (the key itself never)")
    agent: bool = Field(default=False, description="authenticate with the running ssh-agent instead")
    known_hosts: Path = Field(description="the known-hosts file the host's key is checked against")
    proxy_jump: str | None = Field(default=None, description="[user@]bastion[:port], as ssh -J takes it")
    sudo: bool = Field(default=False, description="run each command with `sudo -n` on the host")
    pidfile: str | None = Field(default=None, description=(
        "the node's pidfile on its host: kill, pause and resume signal that process"))
    start: str | None = Field(default=None, description=(
        "the command that starts the node on its host (restart: kill, then this)"))
    connect_timeout_s: Annotated[float, Field(gt=0, le=60)] = 5.0
    """how long connecting may take"""

    @model_validator(mode="after")
    def _one_login(self) -> "SshControl":
        if bool(self.key_file) == self.agent:
            raise ValueError("give one of key_file, agent: true")
        return self

    def resolved(self, directory: Path) -> "SshControl":
        """Its files as absolute paths (a relative one is the topology file's folder's)."""
        files = {name: path if path.is_absolute() else directory / path
                 for name in ("key_file", "known_hosts") if (path := getattr(self, name))}
        return self.model_copy(update=files)

    def files(self) -> dict[str, Path]:
        return {name: path for name in ("key_file", "known_hosts") if (path := getattr(self, name))}

    def destination(self, default_host: str) -> str:
        host = self.host or default_host
        return f"{self.user}@{host}" if self.user else host

    def argv(self, default_host: str, line: str) -> list[str]:
        """ssh running `line` (a shell command line) on the host, bounded and checked."""
        options = {"BatchMode": "yes", "StrictHostKeyChecking": "yes",
                   "UserKnownHostsFile": str(self.known_hosts), "GlobalKnownHostsFile": "/dev/null",
                   "ConnectTimeout": f"{self.connect_timeout_s:g}", "ServerAliveInterval": "5",
                   "ServerAliveCountMax": "2", "LogLevel": "ERROR"}
        if self.key_file:
            options |= {"IdentityFile": str(self.key_file), "IdentitiesOnly": "yes"}
        base = ["-F", "/dev/null", "-T"]
        for name, value in options.items():
            base += ["-o", f"{name}={value}"]
        argv = ["ssh", *base, "-p", str(self.port)]
        if self.proxy_jump:
            # the bastion's key is checked against the same file: ProxyJump would not pass
            # these options to the hop, so the hop is spelled out
            hop = ["ssh", *base, "-W", "%h:%p", f"ssh://{self.proxy_jump}"]
            argv += ["-o", "ProxyCommand=" + " ".join(shlex.quote(a) for a in hop)]
        return [*argv, self.destination(default_host), "--", self.on_host(line)]

    def on_host(self, line: str) -> str:
        return f"sudo -n sh -c {shlex.quote(line)}" if self.sudo else line

    def action(self, action: str) -> str | None:
        """The host's command line for a node action, from `pidfile` and `start`."""
        if action in SIGNALS and self.pidfile:
            return f"kill -s {SIGNALS[action]} \"$(cat {shlex.quote(self.pidfile)})\""
        if action == "restart" and self.pidfile and self.start:
            return f"kill -s KILL \"$(cat {shlex.quote(self.pidfile)})\" 2>/dev/null; {self.start}"
        return None

    def hosts(self) -> list[str]:
        """The hosts the harness connects to, for the network rule."""
        jump = self.proxy_jump.rpartition("@")[2].rsplit(":", 1)[0] if self.proxy_jump else None
        return [h for h in (self.host, jump) if h]


HOST_KEY_CHANGED = ("REMOTE HOST IDENTIFICATION HAS CHANGED", "Host key verification failed")


def explain(stderr: str, destination: str, known_hosts: Path) -> str | None:
    """One sentence for what ssh's own output says went wrong at the door, or None."""
    if any(mark in stderr for mark in HOST_KEY_CHANGED):
        return (f"the host key of {destination} is not the one {known_hosts} holds for it; "
                "if the host was rebuilt, replace its line there (ssh-keyscan), never accept it blindly")
    if "Permission denied" in stderr:
        return f"{destination} refused the login (ssh: {stderr.strip().splitlines()[-1]})"
    if "Connection refused" in stderr or "timed out" in stderr or "No route to host" in stderr:
        return f"no SSH server answers at {destination} ({stderr.strip().splitlines()[-1]})"
    return None
