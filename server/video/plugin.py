"""Video planning meetings: waiting room, guest links, forwarding relay, TURN credentials."""

from __future__ import annotations

from collections.abc import AsyncIterator

from server.core.context import AppContext
from server.core.plugin import Plugin
from server.core.ratelimit import InMemoryRateLimiter
from server.identity.principal import Principal
from server.video import service
from server.video.routes import api, setup_routes


async def video_services(ctx: AppContext) -> AsyncIterator[None]:
    ctx.services.setdefault("ratelimiter", InMemoryRateLimiter())

    async def resolve_guest(ctx: AppContext, token: str) -> Principal | None:
        async with ctx.db.transaction() as session:
            return await service.guest_principal(session, token, ctx.clock())

    ctx.services["guest_resolver"] = resolve_guest
    yield


PLUGIN = Plugin(name="video", api=api, setup_routes=setup_routes, lifecycle=[video_services])
