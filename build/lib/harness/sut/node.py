"""A node's state and the decisions every listener shares: serve, redirect or refuse.

Listeners (HTTP, HTTPS, FTP, SMTP) are thin; they ask the node. The node keeps membership in
the shared store with a heartbeat under a TTL, so peers see it die within `member_ttl_ms`, and
picks a redirect target among live peers that can serve the requested service's package.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import random
import time
from collections.abc import AsyncIterator, Coroutine
from dataclasses import dataclass, field
from typing import Literal

import redis.asyncio as aioredis

from harness.sut.redirect import is_excluded, package_of, read_exclusions
from harness.sut.settings import SERVER_VERSION, NodeSettings, PackageInfo

log = logging.getLogger("harness.sut")

MEMBER_KEY = "harness:member:"
DESIRED_PACKAGES = "harness:packages:desired"
AUDIT = "harness:audit"
REPLICATED_PACKAGE = "HarnessExtras"
# Marks a side effect's key done and appends its audit entry, or neither (the key was done).
RECORD_ONCE = """
if redis.call('SET', KEYS[1], ARGV[1], 'NX') then
  redis.call('RPUSH', KEYS[2], ARGV[2])
  return 1
end
return 0
"""


class Refused(Exception):
    """The node cannot serve this request and, by contract, must not hand it on."""


class StoreUnavailable(Exception):
    """The shared store did not answer in time."""


@dataclass(frozen=True)
class Route:
    action: Literal["serve", "redirect", "unavailable", "not_found"]
    target: str | None = None


class Store:
    """Cache and session state: shared in Redis, or node-local under the `local_cache` mutant."""

    def __init__(self, client: aioredis.Redis, local: bool) -> None:
        self._redis = client
        self._local: dict[str, str] | None = {} if local else None

    async def get(self, key: str) -> str | None:
        if self._local is not None:
            return self._local.get(key)
        value = await _store_call(self._redis.get(key))
        return value.decode() if value is not None else None

    async def set(self, key: str, value: str) -> None:
        if self._local is not None:
            self._local[key] = value
        else:
            await _store_call(self._redis.set(key, value))

    async def incr(self, key: str) -> int:
        if self._local is not None:
            self._local[key] = str(int(self._local.get(key, "0")) + 1)
            return int(self._local[key])
        return int(await _store_call(self._redis.incr(key)))

    def clear_local(self) -> None:
        if self._local is not None:
            self._local.clear()


async def _store_call(awaitable, timeout: float = 1.0):  # type: ignore[no-untyped-def]
    try:
        return await asyncio.wait_for(awaitable, timeout)
    except (aioredis.RedisError, OSError, asyncio.TimeoutError) as e:
        raise StoreUnavailable(str(e) or type(e).__name__) from None


class Pool:
    """A per-node connection pool to the back end, like an adapter connection pool.

    It opens `size` connections at start-up, each named after the node so the back end can
    count them per node (CLIENT LIST). Under `pool_leak` every request opens a connection of
    its own and never gives it back.
    """

    def __init__(self, url: str, size: int, node_id: str, leak: bool) -> None:
        self._url, self._size, self._name, self._leak = url, size, f"pool-{node_id}", leak
        self._idle: asyncio.Queue[aioredis.Redis] = asyncio.Queue()
        self._leaked: list[aioredis.Redis] = []
        self.opened = 0

    def _connect(self) -> aioredis.Redis:
        self.opened += 1
        return aioredis.Redis.from_url(
            self._url, single_connection_client=True, client_name=self._name,
            socket_timeout=1.0, socket_connect_timeout=1.0,
        )

    async def fill(self) -> None:
        """Open the initial connections, retrying until the back end answers."""
        while self._idle.qsize() < self._size:
            conn = self._connect()
            try:
                await conn.ping()
            except (aioredis.RedisError, OSError):
                await conn.aclose()
                await asyncio.sleep(0.2)
                continue
            self._idle.put_nowait(conn)

    @contextlib.asynccontextmanager
    async def connection(self) -> AsyncIterator[aioredis.Redis]:
        if self._leak:
            conn = self._connect()
            self._leaked.append(conn)
            yield conn
            return
        try:
            conn = await asyncio.wait_for(self._idle.get(), timeout=2.0)
        except asyncio.TimeoutError:
            raise StoreUnavailable("no pooled connection free within 2 s") from None
        try:
            yield conn
        finally:
            self._idle.put_nowait(conn)

    async def close_leaked(self) -> None:
        """Give back what `pool_leak` took, so that the next scenario starts from a node as it
        started, not from a back end already full (the leak recurs under the next load)."""
        leaked, self._leaked = self._leaked, []
        for conn in leaked:
            with contextlib.suppress(aioredis.RedisError, OSError):
                await conn.aclose()

    def stats(self) -> dict[str, int]:
        idle = self._idle.qsize()
        return {"size": self._size, "idle": idle, "in_use": self._size - idle,
                "leaked": len(self._leaked), "opened": self.opened}


@dataclass
class Node:
    settings: NodeSettings
    services: frozenset[str]
    """the services deployed on the node (`harness.sut.services.SERVICES`), which the node
    routes and lists in its manifest"""
    redis: aioredis.Redis = field(init=False)
    store: Store = field(init=False)
    pool: Pool = field(init=False)
    packages: dict[str, PackageInfo] = field(init=False)
    connections: dict[str, str] = field(default_factory=dict)
    quiescing: bool = False
    maintenance: bool = False  # answers 503 to every request but the switch itself
    stuck_unhealthy: bool = False
    exclusions: tuple[str, ...] = ()
    threads: asyncio.Semaphore = field(init=False)
    background: set[asyncio.Task[object]] = field(default_factory=set)

    def __post_init__(self) -> None:
        s = self.settings
        self.threads = asyncio.Semaphore(s.max_concurrency)
        self.redis = aioredis.Redis.from_url(
            s.redis_url, socket_timeout=0.5, socket_connect_timeout=0.5)
        self.store = Store(self.redis, local=self.mutant("local_cache"))
        self.pool = Pool(s.backend_url, s.pool_size, s.node_id, leak=self.mutant("pool_leak"))
        self.exclusions = read_exclusions(s.redir_cnf)
        self.reset()

    @property
    def id(self) -> str:
        return self.settings.node_id

    def mutant(self, name: str) -> bool:
        return name in self.settings.mutants

    def reset(self) -> None:
        """Back to the state the node started in (the harness's hook between scenarios)."""
        self.packages = {k: v.model_copy() for k, v in self.settings.packages.items()}
        if self.mutant("package_missing"):
            self.packages.pop(REPLICATED_PACKAGE, None)
        self.quiescing = False
        self.maintenance = False
        self.connections.clear()
        self.store.clear_local()

    async def _restarted(self) -> bool:
        """Did this node run before in this cluster? It leaves a trace in the store to tell."""
        with contextlib.suppress(StoreUnavailable):
            seen = f"harness:seen:{self.id}"
            before = bool(await _store_call(self.redis.exists(seen)))
            await _store_call(self.redis.set(seen, "1"))
            return before
        return False

    async def start(self) -> list[asyncio.Task[None]]:
        restarted = (self.mutant("never_rejoins") or self.mutant("pool_never_refills")) \
            and await self._restarted()
        # never_rejoins: like a node holding a stale lock, a restart never reports healthy.
        self.stuck_unhealthy = restarted and self.mutant("never_rejoins")
        tasks = [asyncio.create_task(self._heartbeat())]
        # pool_never_refills: like an adapter connection left disabled, a restart opens no pool.
        if not (restarted and self.mutant("pool_never_refills")):
            tasks.append(asyncio.create_task(self.pool.fill()))
        return tasks

    # -- membership -------------------------------------------------------------------------

    def member_record(self) -> dict[str, object]:
        return {
            "id": self.id,
            "http": self.settings.advertise_http,
            "https": self.settings.advertise_https,
            "quiescing": self.quiescing,
            "packages": {k: v.model_dump() for k, v in self.packages.items()},
        }

    async def _heartbeat(self) -> None:
        s = self.settings
        while True:
            with contextlib.suppress(StoreUnavailable):
                await _store_call(self.redis.set(
                    MEMBER_KEY + self.id, json.dumps(self.member_record()), px=s.member_ttl_ms))
                await self._apply_replication()
            await asyncio.sleep(s.heartbeat_s)

    async def _apply_replication(self) -> None:
        desired = await _store_call(self.redis.hgetall(DESIRED_PACKAGES))
        for raw_name, raw_version in desired.items():
            name, version = raw_name.decode(), raw_version.decode()
            if self.mutant("package_missing") and name == REPLICATED_PACKAGE:
                continue
            current = self.packages.get(name)
            if current is None or current.version != version:
                self.packages[name] = PackageInfo(version=version)
                log.info("installed replicated package %s %s", name, version)

    async def members(self) -> list[dict]:
        keys = [k async for k in self.redis.scan_iter(match=MEMBER_KEY + "*", count=100)]
        values = await _store_call(self.redis.mget(keys)) if keys else []
        return [json.loads(v) for v in values if v]

    # -- routing ----------------------------------------------------------------------------

    def can_serve(self, package: str) -> bool:
        info = self.packages.get(package)
        return not self.quiescing and info is not None and info.enabled

    async def route(self, service: str, scheme: str) -> Route:
        package = package_of(service)
        if package is None or service not in self.services:
            return Route("not_found")
        if is_excluded(service, self.exclusions):
            return Route("serve") if package in self.packages else Route("not_found")
        if self.can_serve(package):
            return Route("serve")
        peer = await self._pick_peer(package, scheme)
        return Route("redirect", peer) if peer else Route("unavailable")

    async def _pick_peer(self, package: str, scheme: str) -> str | None:
        try:
            members = await self.members()
        except StoreUnavailable:
            return None
        candidates = [m for m in members if m["id"] != self.id]
        if not self.mutant("redirect_to_any"):
            candidates = [m for m in candidates if not m["quiescing"]
                          and m["packages"].get(package, {}).get("enabled")]
        return random.choice(candidates)[scheme] if candidates else None

    # -- side effects -----------------------------------------------------------------------

    async def record(self, kind: str, key: str, protocol: str, payload: bytes = b"",
                     idempotent: bool = True) -> tuple[dict, bool]:
        """Write a side effect to the audit trail once per key; returns (entry, duplicate)."""
        entry = {"kind": kind, "key": key, "node": self.id, "protocol": protocol,
                 "sha256": hashlib.sha256(payload).hexdigest(), "at": time.time()}
        if not idempotent:
            await _store_call(self.redis.rpush(AUDIT, json.dumps(entry)))
            return entry, False
        # One step in the store: were the key marked done first and the node killed before
        # the entry was written, a retry on a peer would be told "done" and the order lost.
        first = await _store_call(self.redis.eval(
            RECORD_ONCE, 2, f"harness:done:{kind}:{key}", AUDIT, self.id, json.dumps(entry)))
        return entry, not first

    def later(self, delay_s: float, work: Coroutine[object, object, object]) -> None:
        """Run `work` after `delay_s`, past the answer (a task kept until it is done)."""
        async def run() -> None:
            await asyncio.sleep(delay_s)
            with contextlib.suppress(StoreUnavailable):
                await work

        task = asyncio.create_task(run())
        self.background.add(task)
        task.add_done_callback(self.background.discard)

    async def accept_delivery(self, kind: str, key: str, protocol: str, payload: bytes) -> dict:
        """An FTP upload or SMTP message: served here or refused, never handed on."""
        if not self.can_serve("HarnessDemo"):
            raise Refused(f"{self.id} cannot serve {kind} now")
        entry, _ = await self.record(kind, key, protocol, payload)
        return entry

    async def publish_package(self, name: str, version: str) -> None:
        await _store_call(self.redis.hset(DESIRED_PACKAGES, name, version))

    async def audit_entries(self) -> list[dict]:
        return [json.loads(r) for r in await _store_call(self.redis.lrange(AUDIT, 0, -1))]

    def manifest(self) -> dict[str, object]:
        enabled = {k for k, v in self.packages.items() if v.enabled}
        adapters = {k: v.version for k, v in self.packages.items() if k.startswith("Wm")}
        return {
            "node": self.id,
            "server_version": SERVER_VERSION,
            "adapters": adapters,
            "packages": {k: v.version for k, v in sorted(self.packages.items())},
            "connections": sorted(["harness.demo.conn:backendPool", *self.connections]),
            "services": sorted(s for s in self.services if package_of(s) in enabled),
        }
