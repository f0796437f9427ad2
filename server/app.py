"""Application factory: `create_app(settings)` builds the aiohttp app with socket.io attached."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

from aiohttp import web

from server import __version__
from server.core.api import OpenApiBuilder, make_aiohttp_handler
from server.core.background import running
from server.core.context import CTX, AppContext
from server.core.db import Database
from server.core.http import METRICS, Metrics, build_middlewares, security_headers
from server.core.plugin import Plugin
from server.core.ratelimit import InMemoryRateLimiter
from server.core.realtime import create_sio, install_events
from server.domains import plugins
from server.health.routes import OPENAPI_KEY
from server.identity.authn import authenticate
from server.identity.socket import install_connection_handlers
from server.settings import Settings
from server.web import setup_web

log = logging.getLogger("brygga.app")

API_DESCRIPTION = (
    "Secure messaging between care units, a digital contact directory and video planning meetings "
    "for coordinated hospital discharge (LUS) in Stockholm County."
)


def openapi_document(domain_plugins: list[Plugin] | None = None) -> dict[str, Any]:
    """The OpenAPI document of every mounted operation; built without a server (`brygga openapi`)."""
    openapi = OpenApiBuilder("Brygga API", __version__, API_DESCRIPTION)
    for plugin in plugins() if domain_plugins is None else domain_plugins:
        if plugin.api is not None:
            for operation in plugin.api.operations:
                openapi.add(operation)
    return openapi.document


async def hide_server_version(request: web.Request, response: web.StreamResponse) -> None:
    """aiohttp would send `Server: Python/3.x aiohttp/3.y`: versions help an attacker pick exploits."""
    response.headers["Server"] = "Brygga"


async def rate_limiter(ctx: AppContext) -> AsyncIterator[None]:
    """The one place that picks the limiter: Redis (shared by all nodes) when `redis_url` is set.

    Runs before the domain plugins, which use `ctx.limiter`; a limiter set beforehand (tests) is kept.
    """
    if ctx.ratelimiter is None:
        if ctx.settings.redis_url:
            from server.core.ratelimit_redis import LocalFirstRateLimiter, RedisRateLimiter

            ctx.ratelimiter = LocalFirstRateLimiter(RedisRateLimiter.from_url(ctx.settings.redis_url))
        else:
            ctx.ratelimiter = InMemoryRateLimiter()
    try:
        yield
    finally:
        close = getattr(ctx.ratelimiter, "close", None)
        if close is not None:
            await close()


def create_app(settings: Settings | None = None) -> web.Application:
    settings = settings or Settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    metrics = Metrics()
    app = web.Application(
        middlewares=build_middlewares(settings, metrics),
        client_max_size=settings.max_body_bytes,
    )
    app[METRICS] = metrics
    app.on_response_prepare.append(hide_server_version)
    app.on_response_prepare.append(security_headers(settings))
    sio = create_sio(settings)
    sio.attach(app, socketio_path="socket.io")
    database = Database(settings.effective_database_url, background_checkpoints=True)
    ctx = AppContext(settings=settings, db=database, sio=sio)
    app[CTX] = ctx

    domain_plugins = plugins()

    async def authenticate_request(request: web.Request) -> None:
        await authenticate(request)

    for plugin in domain_plugins:
        if plugin.api is not None:
            for operation in plugin.api.operations:
                app.router.add_route(
                    operation.method, operation.path, make_aiohttp_handler(operation, authenticate_request)
                )
        if plugin.setup_routes is not None:
            plugin.setup_routes(app)
    app[OPENAPI_KEY] = openapi_document(domain_plugins)
    setup_web(app, settings.web_dist)

    install_connection_handlers(ctx)
    install_events(ctx, [plugin.events for plugin in domain_plugins if plugin.events is not None])

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            stack.push_async_callback(ctx.db.close)
            await stack.enter_async_context(ctx.db.background_checkpoints())
            await stack.enter_async_context(ctx.db.watch_storage())
            await stack.enter_async_context(asynccontextmanager(rate_limiter)(ctx))
            for plugin in domain_plugins:
                for context in plugin.lifecycle:
                    await stack.enter_async_context(asynccontextmanager(context)(ctx))
            # After the domains registered their deadline kinds; stops before they do.
            await stack.enter_async_context(running(ctx.deadlines.run(ctx.node_id), name="deadlines"))
            log.info("brygga started", extra={"version": __version__, "database": ctx.db.engine.dialect.name})
            yield
            log.info("brygga stopping")

    app.cleanup_ctx.append(lifecycle)
    return app
