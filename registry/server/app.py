"""The ASGI application: routes from ``routes.table()``, authentication and role checks
around every endpoint, errors as JSON, health probes, the OpenAPI document, access logs.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

import anyio.to_thread
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from registry.api import Registry
from registry.errors import RegistryError
from registry.release import __version__
from registry.remote.wire import API
from registry.server import routes
from registry.server.auth import Caller
from registry.server.context import GENERATION, Context, Endpoint
from registry.server.logs import ACCESS
from registry.server.openapi import openapi_route
from registry.server.problems import HttpProblem, from_registry_error, problem
from registry.server.readiness import not_ready
from registry.server.settings import ServerSettings

ACCESS_LOG = logging.getLogger(ACCESS)
_log = logging.getLogger("registry.server")


def create_app(registry: Registry, settings: ServerSettings | None = None) -> Starlette:
    ctx = Context(registry, settings or ServerSettings())
    table = routes.table()
    api_routes = [
        Route(e.path, _guarded(ctx, e), methods=[e.method], name=f"{e.method} {e.path}")
        for e in table
    ]
    extra = [
        Route("/healthz", _healthz, methods=["GET"]),
        Route("/readyz", _readyz(ctx), methods=["GET"]),
        Route(f"{API}/openapi.json", openapi_route(table), methods=["GET"]),
    ]
    from registry.server.ui.routes import ui_routes

    app = Starlette(
        routes=extra + api_routes + ui_routes(ctx),
        exception_handlers={HTTPException: _http_error, Exception: _internal_error},
    )
    return AccessLog(app)  # type: ignore[return-value]


def _guarded(ctx: Context, endpoint: Endpoint) -> Any:
    async def handle(request: Request) -> Response:
        try:
            caller = await _identify(ctx, request)
            request.scope["adapters.caller"] = caller.name
            caller.require(endpoint.role)
            if endpoint.global_only and caller.namespace is not None:
                message = "a namespaced token cannot do this; ask an admin"
                raise HttpProblem(403, "forbidden", message)
            return await endpoint.handler(ctx, request, caller)
        except HttpProblem as exc:
            return problem(exc.status, exc.code, str(exc))
        except RegistryError as exc:
            return from_registry_error(exc)

    return handle


async def _identify(ctx: Context, request: Request) -> Caller:
    """The caller, without a worker thread when the token is known and the catalog
    unchanged. The generation is read first, and left in the scope for the endpoint."""
    if ctx.generation.cheap:
        generation = ctx.generation.current()
    else:
        generation = await anyio.to_thread.run_sync(ctx.generation.current)
    request.scope[GENERATION] = generation
    return await ctx.auth.identify(request.headers.get("authorization", ""), generation)


async def _healthz(_request: Request) -> Response:
    return JSONResponse({"status": "ok", "version": __version__})


def _readyz(ctx: Context) -> Any:
    async def readyz(_request: Request) -> Response:
        reason = await anyio.to_thread.run_sync(not_ready, ctx.registry)
        if reason is not None:
            return problem(503, "not_ready", reason)
        return JSONResponse({"status": "ready"})

    return readyz


async def _http_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 405:
        return problem(405, "method_not_allowed", "this endpoint takes another HTTP method")
    return problem(exc.status_code, "no_route", "no such endpoint; see /api/v1/openapi.json")


async def _internal_error(_request: Request, exc: Exception) -> Response:
    _log.error("unexpected error", exc_info=exc)
    return problem(500, "internal", "the server failed; its log has the details")


class AccessLog:
    """One JSON line per request: method, path, status, time, bytes, the token's name.
    Never the Authorization header or a query string (they may hold secrets or names)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500
        sent = 0

        async def tracking_send(message: Message) -> None:
            nonlocal status, sent
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body":
                sent += len(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        finally:
            ACCESS_LOG.info(
                json.dumps(
                    {
                        "method": scope["method"],
                        "path": scope["path"],
                        "status": status,
                        "ms": round((time.perf_counter() - started) * 1000, 2),
                        "bytes": sent,
                        "actor": scope.get("adapters.caller"),
                        "client": (scope.get("client") or ("", 0))[0],
                    }
                )
            )
