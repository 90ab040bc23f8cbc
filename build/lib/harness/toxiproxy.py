"""Our one door to Toxiproxy: the real server, its proxies, and their toxics.

Built on the `toxiproxy-python` client, whose server address is process-global
(`APIConsumer.host/port`) and whose calls have no timeouts; we point it at our server before
every use, and use the HTTP API with `requests` for what it lacks (a timeout on the health
probe, the full state for reports). The shape mirrors the testcontainers Toxiproxy module
(`create_proxy(name, upstream)`), so users can switch when that ships.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import requests
from toxiproxy import Toxiproxy
from toxiproxy.proxy import Proxy

from harness.errors import HarnessError

TOXIC_TYPES = ("latency", "bandwidth", "slow_close", "timeout", "reset_peer", "slicer", "limit_data")


@dataclass
class ToxiproxyApi:
    host: str
    port: int

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def _client(self) -> Toxiproxy:
        client = Toxiproxy()
        client.update_api_consumer(self.host, self.port)
        return client

    def wait_ready(self, timeout_s: float = 10.0) -> str:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                return requests.get(f"{self.url}/version", timeout=0.5).text.strip()
            except requests.RequestException:
                time.sleep(0.05)
        raise HarnessError(f"the Toxiproxy server at {self.url} did not answer within {timeout_s:.0f} s")

    def create_proxy(self, name: str, upstream: str, listen: str) -> Proxy:
        return self._client().create(upstream=upstream, name=name, listen=listen, enabled=True)

    def proxy(self, name: str) -> Proxy:
        proxy = self._client().get_proxy(name)
        if proxy is None:
            raise HarnessError(f"Toxiproxy has no proxy {name!r}")
        return proxy

    def delete_proxy(self, name: str) -> None:
        self.proxy(name).destroy()

    def set_enabled(self, name: str, enabled: bool) -> None:
        proxy = self.proxy(name)
        proxy.enable() if enabled else proxy.disable()

    def add_toxic(self, proxy: str, name: str, toxic_type: str, stream: str,
                  attributes: dict[str, Any], toxicity: float = 1.0) -> None:
        if toxic_type not in TOXIC_TYPES:
            raise HarnessError(f"unknown toxic type {toxic_type!r}; known: {', '.join(TOXIC_TYPES)}")
        self.proxy(proxy).add_toxic(name=name, type=toxic_type, stream=stream,
                                    toxicity=toxicity, attributes=attributes)

    def remove_toxic(self, proxy: str, name: str) -> None:
        self.proxy(proxy).destroy_toxic(name)

    def reset(self) -> None:
        """Re-enable every proxy and remove every toxic."""
        self._client().reset()

    def state(self) -> list[dict[str, Any]]:
        """Every proxy with its toxics, as the API reports them (for reports)."""
        return list(requests.get(f"{self.url}/proxies", timeout=2).json().values())
