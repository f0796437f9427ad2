"""Video planning meetings: waiting room, guest links, forwarding relay, TURN credentials."""

from __future__ import annotations

from collections.abc import AsyncIterator

from server.core.context import AppContext
from server.core.plugin import Plugin
from server.core.principal import Principal
from server.video import service
from server.video.cluster import ROOM_DIRECTORY, Directory
from server.video.events import events
from server.video.media import MEDIA, RelayProcesses
from server.video.rooms import Rooms
from server.video.routes import api, setup_routes


async def video_services(ctx: AppContext) -> AsyncIterator[None]:
    async def resolve_guest(ctx: AppContext, token: str) -> Principal | None:
        async with ctx.db.transaction() as session:
            return await service.guest_principal(session, token, ctx.clock())

    ctx.guest_resolver = resolve_guest

    rooms: Rooms | None = None

    async def on_signal(*args: object) -> None:
        assert rooms is not None
        await rooms.on_signal(*args)  # type: ignore[arg-type]

    settings = ctx.settings
    # With several nodes a room may move here any time (failover): keep a started relay ready.
    spare = bool(settings.redis_url) and settings.video_relay_capacity > 0
    media = RelayProcesses(on_signal, idle_seconds=settings.video_room_idle_seconds, spare=spare)
    media.start()
    rooms = Rooms(ctx.sio, media, ctx.db)
    directory = Directory(
        rooms,
        ctx.sio,
        ctx.db,
        ctx.node_id,
        redis_url=settings.redis_url,
        lease_seconds=settings.video_room_lease_seconds,
        capacity=settings.video_relay_capacity,
    )
    ctx.provide(MEDIA, media)
    ctx.provide(ROOM_DIRECTORY, directory)
    ctx.disconnect_hooks.append(directory.disconnected)
    await directory.start()
    try:
        yield
    finally:
        await directory.close()
        await media.close()


PLUGIN = Plugin(name="video", api=api, events=events, setup_routes=setup_routes, lifecycle=[video_services])
