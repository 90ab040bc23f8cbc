"""A node's settings, written by the cluster backend as JSON and read at start-up."""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

SERVER_VERSION = "10.15.0.0"


class PackageInfo(BaseModel):
    version: str
    enabled: bool = True


def default_packages() -> dict[str, PackageInfo]:
    """What every node of the reference cluster deploys: the same versions everywhere."""
    return {
        "WmART": PackageInfo(version="10.1.0.19"),
        "WmJDBCAdapter": PackageInfo(version="10.3.0.12"),
        "HarnessDemo": PackageInfo(version="1.0.0"),
        "HarnessExtras": PackageInfo(version="1.0.0"),
    }


class NodeSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    node_id: str
    host: str = Field(description="address the node's own listeners bind to")
    http_port: int
    https_port: int
    ftp_port: int
    smtp_port: int
    advertise_http: str = Field(description="the node's client-facing HTTP URL, used in redirects")
    advertise_https: str
    redis_url: str = Field(description="the shared store (through a fault proxy in our backends)")
    backend_url: str = Field(description="the back end the per-node connection pool talks to")
    pool_size: int = 4
    max_concurrency: int = Field(
        default=8, description="concurrent business invocations, like IS's server thread pool")
    tls_cert: Path
    tls_key: Path
    redir_cnf: Path
    packages: dict[str, PackageInfo] = Field(default_factory=default_packages)
    mutants: list[str] = Field(default_factory=list)
    access_log: Path | None = Field(
        default=None, description="append `<wall time> <status> <path>` per HTTP answer (benchmarks)")
    heartbeat_s: float = 0.25
    member_ttl_ms: int = 1500

    @classmethod
    def read(cls, path: Path) -> "NodeSettings":
        return cls.model_validate(json.loads(path.read_text()))

    def write(self, path: Path) -> None:
        path.write_text(self.model_dump_json(indent=2))
