"""Application factory: `create_app(settings)` builds the aiohttp app with socket.io attached."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

from aiohttp import web

from server import __version__
from server.core import ratelimit
from server.core.api import OpenApiBuilder, make_aiohttp_handler
from server.core.context import CTX, AppContext
from server.core.db import Database
from server.core.http import METRICS, Metrics, build_middlewares
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


def create_app(settings: Settings | None = None) -> web.Application:
    settings = settings or Settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    metrics = Metrics()
    app = web.Application(
        middlewares=build_middlewares(settings, metrics),
        client_max_size=settings.max_body_bytes,
    )
    app[METRICS] = metrics
    sio = create_sio(settings)
    sio.attach(app, socketio_path="socket.io")
    database = Database(settings.effective_database_url, background_checkpoints=True)
    ctx = AppContext(settings=settings, db=database, sio=sio)
    app[CTX] = ctx

    domain_plugins = plugins()
    openapi = OpenApiBuilder("Brygga API", __version__, API_DESCRIPTION)

    async def authenticate_request(request: web.Request) -> None:
        await authenticate(request)

    for plugin in domain_plugins:
        if plugin.api is not None:
            for operation in plugin.api.operations:
                app.router.add_route(
                    operation.method, operation.path, make_aiohttp_handler(operation, authenticate_request)
                )
                openapi.add(operation)
        if plugin.setup_routes is not None:
            plugin.setup_routes(app)
    app[OPENAPI_KEY] = openapi.document
    setup_web(app, settings.web_dist)

    install_connection_handlers(ctx)
    install_events(ctx, [plugin.events for plugin in domain_plugins if plugin.events is not None])

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            stack.push_async_callback(ctx.db.close)
            await stack.enter_async_context(ctx.db.background_checkpoints())
            await stack.enter_async_context(asynccontextmanager(ratelimit.lifecycle)(ctx))
            for plugin in domain_plugins:
                for context in plugin.lifecycle:
                    await stack.enter_async_context(asynccontextmanager(context)(ctx))
            log.info("brygga started", extra={"version": __version__, "database": ctx.db.engine.dialect.name})
            yield
            log.info("brygga stopping")

    app.cleanup_ctx.append(lifecycle)
    return app
