"""Messaging plugs in here: REST, socket.io events, the send batcher, escalation timers on the core
deadline engine, `brygga keys`."""

from __future__ import annotations

import argparse
from collections.abc import AsyncIterator

from server.core import deadlines
from server.core.context import AppContext
from server.core.plugin import Plugin
from server.core.realtime import NODES_RESYNC, on_node_message
from server.messaging import (
    rules,  # noqa: F401 - registers the messaging policy rules
    sealed,  # noqa: F401 - registers the sealed columns and their check
)
from server.messaging.access import PARTICIPANTS_CHANGED
from server.messaging.cli import register_cli
from server.messaging.events import MESSAGING, events
from server.messaging.routes import api
from server.messaging.wiring import build_service

# Escalation timers fire on the node holding the deadline engine's lease (server/core/deadlines.py).
ESCALATION_LEASE = deadlines.LEASE


async def lifecycle(ctx: AppContext) -> AsyncIterator[None]:
    """Start the service and register its escalation timers with the deadline engine."""
    service = await build_service(ctx)
    ctx.provide(MESSAGING, service)
    ctx.conversations = service
    service.escalation.register()
    # Participants cached on every node start over when a conversation gains units (any node's commit).
    on_node_message(ctx.sio, PARTICIPANTS_CHANGED, service.guard.participants_changed)
    on_node_message(ctx.sio, NODES_RESYNC, service.guard.start_over)
    await service.start()
    try:
        yield
    finally:
        await service.stop()


def cli(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    register_cli(sub)


PLUGIN = Plugin(name="messaging", api=api, events=events, lifecycle=[lifecycle], cli=cli)
