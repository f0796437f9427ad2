"""How the messaging service is built from the app context: for the plugin's lifecycle, `brygga keys`
and other domains' seed data (kept apart from plugin.py, which imports the CLI)."""

from __future__ import annotations

from typing import Any

from server.core.app_keys import envelope_for
from server.core.calendar import AlwaysOpen, UnitCalendar
from server.core.context import AppContext
from server.core.realtime import tell_nodes
from server.messaging.config import MessagingConfig
from server.messaging.service import MessagingService


class SocketNotifier:
    """Emits to socket.io rooms; with the Redis manager every node delivers to its own sockets."""

    def __init__(self, ctx: AppContext) -> None:
        self.ctx = ctx

    async def emit(self, event: str, data: dict[str, Any], rooms: list[str], skip: str | None = None) -> None:
        if rooms and self.ctx.sio is not None:
            await self.ctx.sio.emit(event, data, to=rooms, skip_sid=skip)

    async def tell_nodes(self, topic: str, data: dict[str, Any]) -> None:
        if self.ctx.sio is not None:
            await tell_nodes(self.ctx.sio, topic, data)


async def build_service(ctx: AppContext) -> MessagingService:
    def calendar() -> UnitCalendar:
        return ctx.calendar or AlwaysOpen()

    envelope = await envelope_for(ctx)
    return MessagingService(
        ctx.db,
        envelope,
        MessagingConfig(),
        clock=lambda: ctx.clock(),
        deadlines=ctx.deadlines,
        calendar=calendar,
        notifier=SocketNotifier(ctx),
    )
