"""Video planning meetings: waiting room, guest links, forwarding relay, TURN credentials."""

from __future__ import annotations

from collections.abc import AsyncIterator

from server.core.context import AppContext
from server.core.plugin import Plugin
from server.identity.principal import Principal
from server.video import service
from server.video.events import events
from server.video.media import RelayProcesses
from server.video.rooms import Rooms
from server.video.routes import api, setup_routes


async def video_services(ctx: AppContext) -> AsyncIterator[None]:
    async def resolve_guest(ctx: AppContext, token: str) -> Principal | None:
        async with ctx.db.transaction() as session:
            return await service.guest_principal(session, token, ctx.clock())

    ctx.services["guest_resolver"] = resolve_guest

    rooms: Rooms | None = None

    async def on_signal(*args: object) -> None:
        assert rooms is not None
        await rooms.on_signal(*args)  # type: ignore[arg-type]

    media = RelayProcesses(on_signal, idle_seconds=ctx.settings.video_room_idle_seconds)
    rooms = Rooms(ctx.sio, media)
    ctx.services["video.media"] = media
    ctx.services["video.rooms"] = rooms
    ctx.services.setdefault("disconnect_hooks", []).append(rooms.disconnected)
    try:
        yield
    finally:
        await media.close()


PLUGIN = Plugin(name="video", api=api, events=events, setup_routes=setup_routes, lifecycle=[video_services])
