"""A certificate authority per run, so HTTPS is verified for real and nothing is reused."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import trustme


@dataclass(frozen=True)
class CertFiles:
    cert: Path
    key: Path


class RunCA:
    """Issues server certificates naming the addresses clients will use."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._ca = trustme.CA(organization_name="conformance harness")
        self.ca_file = directory / "ca.pem"
        self._ca.cert_pem.write_to_path(str(self.ca_file))

    def issue(self, name: str, *hosts: str) -> CertFiles:
        cert = self._ca.issue_cert(*hosts, "localhost")
        files = CertFiles(self.directory / f"{name}.crt", self.directory / f"{name}.key")
        cert.cert_chain_pems[0].write_to_path(str(files.cert))
        cert.private_key_pem.write_to_path(str(files.key))
        return files

    def issue_combined(self, name: str, *hosts: str) -> Path:
        """Certificate and key in one PEM file, as HAProxy wants them."""
        files = self.issue(name, *hosts)
        combined = self.directory / f"{name}.pem"
        combined.write_bytes(files.cert.read_bytes() + files.key.read_bytes())
        return combined
