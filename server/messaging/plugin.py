"""Messaging plugs in here: REST, socket.io events, the send batcher and escalation timer, `brygga keys`."""

from __future__ import annotations

import argparse
from collections.abc import AsyncIterator
from typing import Any

from server.core import leases
from server.core.background import running
from server.core.calendar import AlwaysOpen, UnitCalendar
from server.core.context import AppContext
from server.core.envelope import Envelope, KeyRing
from server.core.plugin import Plugin
from server.messaging import rules  # noqa: F401 - registers the messaging policy rules
from server.messaging.cli import register_cli
from server.messaging.config import MessagingConfig
from server.messaging.events import events
from server.messaging.routes import api
from server.messaging.service import MessagingService

ESCALATION_LEASE = "messaging-escalations"


class SocketNotifier:
    """Emits to socket.io rooms; with the Redis manager every node delivers to its own sockets."""

    def __init__(self, ctx: AppContext) -> None:
        self.ctx = ctx

    async def emit(self, event: str, data: dict[str, Any], rooms: list[str], skip: str | None = None) -> None:
        if rooms and self.ctx.sio is not None:
            await self.ctx.sio.emit(event, data, to=rooms, skip_sid=skip)


def envelope_for(ctx: AppContext) -> Envelope:
    envelope: Envelope | None = ctx.services.get("envelope")
    if envelope is None:
        envelope = Envelope(KeyRing(ctx.settings.effective_key_file))
        ctx.services["envelope"] = envelope
    return envelope


def build_service(ctx: AppContext) -> MessagingService:
    def calendar() -> UnitCalendar:
        found: UnitCalendar | None = ctx.services.get("calendar")
        return found or AlwaysOpen()

    config: MessagingConfig = ctx.services.get("messaging_config") or MessagingConfig()
    return MessagingService(
        ctx.db, envelope_for(ctx), config, clock=lambda: ctx.clock(), calendar=calendar, notifier=SocketNotifier(ctx)
    )


async def lifecycle(ctx: AppContext) -> AsyncIterator[None]:
    """Start the service; its escalation timers run only on the node holding the `ESCALATION_LEASE`."""
    service = build_service(ctx)
    ctx.services["messaging"] = service

    async def on_change(held: bool) -> None:
        service.wake.set()  # take over at once: fire whatever fell due while nobody held the lease

    keeper = leases.LeaseKeeper(
        ctx.db, ESCALATION_LEASE, leases.node_id(ctx), ttl=service.config.lease_ttl_seconds, on_change=on_change
    )
    service.may_escalate = lambda: keeper.held
    # Leaving the block cancels the keeper, which releases the lease: another node takes over at once.
    async with running(keeper.run(), name="messaging-escalation-lease"):
        await service.start()
        try:
            yield
        finally:
            await service.stop()


def cli(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    register_cli(sub)


PLUGIN = Plugin(name="messaging", api=api, events=events, lifecycle=[lifecycle], cli=cli)
