"""Deviation reports plug in here: REST routes and the service."""

from __future__ import annotations

from collections.abc import AsyncIterator

from server.core.context import AppContext
from server.core.plugin import Plugin
from server.deviations.routes import DEVIATIONS, api
from server.deviations.service import DeviationService


async def lifecycle(ctx: AppContext) -> AsyncIterator[None]:
    ctx.provide(DEVIATIONS, DeviationService(ctx.db, clock=lambda: ctx.clock()))
    yield


PLUGIN = Plugin(name="deviations", api=api, lifecycle=[lifecycle])
