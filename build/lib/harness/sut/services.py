"""The node's services, named like Integration Server's `folder:service`.

`harness.demo:*` and `harness.extras:*` are the business services a cluster load-balances and
redirects; `wm.art.admin:*` are the administrative services that must run on the node
addressed (the redirect exclusion list). A handler takes the node and the call and returns a
`Result`; the listeners turn it into HTTP.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from harness.sut.settings import PackageInfo

if TYPE_CHECKING:
    from harness.sut.node import Node

SESSION_COOKIE = "ssnid"
ACK_BEFORE_DURABLE_S = 0.3  # under `order_acked_before_durable`, how late the order is recorded


@dataclass
class Invocation:
    params: dict[str, str]
    body: bytes = b""
    cookies: dict[str, str] = field(default_factory=dict)
    protocol: str = "http"


@dataclass
class Result:
    body: dict
    status: int = 200
    cookies: dict[str, str] = field(default_factory=dict)


Handler = Callable[["Node", Invocation], Awaitable[Result]]
SERVICES: dict[str, Handler] = {}


def service(name: str) -> Callable[[Handler], Handler]:
    def register(fn: Handler) -> Handler:
        SERVICES[name] = fn
        return fn
    return register


def _required(call: Invocation, name: str) -> str:
    value = call.params.get(name)
    if not value:
        raise ValueError(f"parameter {name!r} is required")
    return value


# -- business services ----------------------------------------------------------------------

@service("harness.demo:whoami")
async def whoami(node: Node, call: Invocation) -> Result:
    return Result({"node": node.id})


@service("harness.demo:echo")
async def echo(node: Node, call: Invocation) -> Result:
    return Result({"node": node.id, "params": call.params, "body": call.body.decode(errors="replace")})


@service("harness.demo:slow")
async def slow(node: Node, call: Invocation) -> Result:
    delay_ms = min(int(call.params.get("delay", "100")), 10_000)
    await asyncio.sleep(delay_ms / 1000)
    return Result({"node": node.id, "delay_ms": delay_ms})


@service("harness.demo:counter")
async def counter(node: Node, call: Invocation) -> Result:
    """A stateful session: the count survives failover only if the state is shared."""
    sid = call.cookies.get(SESSION_COOKIE) or uuid.uuid4().hex
    count = await node.store.incr(f"harness:session:{sid}:count")
    return Result({"node": node.id, "count": count}, cookies={SESSION_COOKIE: sid})


@service("harness.demo:cachePut")
async def cache_put(node: Node, call: Invocation) -> Result:
    await node.store.set(f"harness:cache:{_required(call, 'key')}", call.params.get("value", ""))
    return Result({"node": node.id, "stored": True})


@service("harness.demo:cacheGet")
async def cache_get(node: Node, call: Invocation) -> Result:
    key = _required(call, "key")
    value = await node.store.get(f"harness:cache:{key}")
    if value is None:
        return Result({"node": node.id, "error": f"no cache entry {key!r}"}, status=404)
    return Result({"node": node.id, "key": key, "value": value})


@service("harness.demo:order")
async def order(node: Node, call: Invocation) -> Result:
    """An order with an idempotency key: a retried call must not record it twice, and an
    acknowledged one is already recorded."""
    key = _required(call, "key")
    record = node.record("order", key, call.protocol, call.params.get("item", "").encode(),
                         idempotent=not node.mutant("order_not_idempotent"))
    if node.mutant("order_acked_before_durable"):  # answers now, records a moment later
        node.later(ACK_BEFORE_DURABLE_S, record)
        return Result({"node": node.id, "key": key, "duplicate": False})
    _, duplicate = await record
    return Result({"node": node.id, "key": key, "duplicate": duplicate})


@service("harness.demo:poolQuery")
async def pool_query(node: Node, call: Invocation) -> Result:
    async with node.pool.connection() as conn:
        hits = await conn.incr("harness:pool:queries")
    return Result({"node": node.id, "backend_queries": hits})


@service("harness.extras:hello")
async def hello(node: Node, call: Invocation) -> Result:
    return Result({"node": node.id, "hello": call.params.get("name", "world")})


# -- administrative services (wm.art: never redirected) --------------------------------------

@service("wm.art.admin:health")
async def health(node: Node, call: Invocation) -> Result:
    """Healthy when the node can reach the shared store; what the balancer checks."""
    if node.stuck_unhealthy:
        return Result({"node": node.id, "status": "stuck"}, status=503)
    try:
        await asyncio.wait_for(node.redis.ping(), 0.3)
    except Exception:  # noqa: BLE001 - any failure to reach the store means unhealthy
        return Result({"node": node.id, "status": "store unreachable"}, status=503)
    return Result({"node": node.id, "status": "ok", "quiescing": node.quiescing})


@service("wm.art.admin:packages")
async def packages(node: Node, call: Invocation) -> Result:
    return Result(node.manifest())


@service("wm.art.admin:packageDisable")
async def package_disable(node: Node, call: Invocation) -> Result:
    return _set_enabled(node, _required(call, "package"), False)


@service("wm.art.admin:packageEnable")
async def package_enable(node: Node, call: Invocation) -> Result:
    return _set_enabled(node, _required(call, "package"), True)


def _set_enabled(node: Node, name: str, enabled: bool) -> Result:
    info = node.packages.get(name)
    if info is None:
        return Result({"node": node.id, "error": f"no package {name!r}"}, status=404)
    node.packages[name] = PackageInfo(version=info.version, enabled=enabled)
    return Result({"node": node.id, "package": name, "enabled": enabled})


@service("wm.art.admin:replicate")
async def replicate(node: Node, call: Invocation) -> Result:
    """Publish a package version for every node of the cluster to install."""
    name, version = _required(call, "package"), _required(call, "version")
    await node.publish_package(name, version)
    return Result({"node": node.id, "package": name, "version": version})


@service("wm.art.admin:quiesce")
async def quiesce(node: Node, call: Invocation) -> Result:
    node.quiescing = call.params.get("enable", "true").lower() == "true"
    return Result({"node": node.id, "quiescing": node.quiescing})


@service("wm.art.admin:maintenance")
async def maintenance(node: Node, call: Invocation) -> Result:
    """The node's maintenance switch: on, it answers every request (its health too) 503,
    up and reachable all the while; "if a server cannot handle a request", C2's other case."""
    node.maintenance = call.params.get("enable", "true").lower() == "true"
    return Result({"node": node.id, "maintenance": node.maintenance})


@service("wm.art.admin:setConnection")
async def set_connection(node: Node, call: Invocation) -> Result:
    """Save an adapter connection's configuration on this node (node-local, like IS)."""
    name = _required(call, "name")
    node.connections[name] = call.params.get("value", "")
    return Result({"node": node.id, "connection": name, "saved": True})


@service("wm.art.admin:deleteConnection")
async def delete_connection(node: Node, call: Invocation) -> Result:
    name = _required(call, "name")
    return Result({"node": node.id, "connection": name,
                   "deleted": node.connections.pop(name, None) is not None})


@service("wm.art.admin:poolStats")
async def pool_stats(node: Node, call: Invocation) -> Result:
    return Result({"node": node.id, **node.pool.stats()})


@service("wm.art.admin:audit")
async def audit(node: Node, call: Invocation) -> Result:
    return Result({"node": node.id, "entries": await node.audit_entries()})
