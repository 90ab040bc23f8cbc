"""HTTP and HTTPS: `/invoke/<folder>:<service>`, every answer carrying `X-Node-Id`."""

from __future__ import annotations

import json
import logging
import time as _time

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger

from harness.sut.node import Node, StoreUnavailable
from harness.sut.services import SERVICES, Invocation

log = logging.getLogger("harness.sut.http")
NODE_HEADER = "X-Node-Id"


class ServedLog(AbstractAccessLogger):
    """One line per HTTP answer, stamped with the wall clock once the answer is written: the
    server-side record the benchmarks compare the harness's client-side view with."""

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        self.logger.info("%.6f %d %s", _time.time(), response.status, request.path)


def make_app(node: Node) -> web.Application:
    app = web.Application()

    async def stamp(_request: web.Request, response: web.StreamResponse) -> None:
        response.headers[NODE_HEADER] = node.id

    async def invoke(request: web.Request) -> web.StreamResponse:
        name = request.match_info["service"]
        if node.maintenance and name != "wm.art.admin:maintenance":
            return web.json_response({"node": node.id, "error": "in maintenance"}, status=503)
        route = await node.route(name, request.scheme)
        if route.action == "redirect":
            raise web.HTTPFound(location=route.target.rstrip("/") + request.path_qs)
        if route.action == "not_found":
            return web.json_response({"node": node.id, "error": f"no service {name!r}"}, status=404)
        if route.action == "unavailable":
            return web.json_response(
                {"node": node.id, "error": f"no node can serve {name!r} now"}, status=503)
        call = Invocation(params=dict(request.query), body=await request.read(),
                          cookies=dict(request.cookies), protocol=request.scheme)
        if call.body and request.content_type == "application/json":
            call.params.update({k: str(v) for k, v in json.loads(call.body).items()})
        try:
            if name.startswith("wm.art."):
                result = await SERVICES[name](node, call)
            else:  # business services wait for one of the node's threads; capacity is per node
                async with node.threads:
                    result = await SERVICES[name](node, call)
        except ValueError as e:
            return web.json_response({"node": node.id, "error": str(e)}, status=400)
        except StoreUnavailable as e:
            return web.json_response({"node": node.id, "error": f"store: {e}"}, status=503)
        response = web.json_response(result.body, status=result.status)
        for key, value in result.cookies.items():
            response.set_cookie(key, value)
        return response

    async def reset(_request: web.Request) -> web.Response:
        node.reset()
        await node.pool.close_leaked()
        return web.json_response({"node": node.id, "reset": True})

    app.on_response_prepare.append(stamp)
    app.router.add_route("*", "/invoke/{service}", invoke)
    app.router.add_post("/_harness/reset", reset)
    return app
