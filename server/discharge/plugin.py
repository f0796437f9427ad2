"""Discharge cases plug in here: REST routes and the service (messaging as its typed `CaseMessaging` port)."""

from __future__ import annotations

from collections.abc import AsyncIterator

from server.core.context import AppContext
from server.core.plugin import Plugin
from server.discharge.clocks import KINDS
from server.discharge.routes import DISCHARGE, api
from server.discharge.seed import seed_demo
from server.discharge.wiring import build_service


async def lifecycle(ctx: AppContext) -> AsyncIterator[None]:
    """The service, and its clocks as kinds of timer on the core deadline engine."""
    service = build_service(ctx)
    ctx.provide(DISCHARGE, service)
    for kind in KINDS.values():
        ctx.deadlines.register(kind, service.fire_clock)
    yield


PLUGIN = Plugin(name="discharge", api=api, lifecycle=[lifecycle], seed_demo=seed_demo)
