"""Digital contact directory: organisations, units, contact routes, opening hours, FHIR mCSD."""

from __future__ import annotations

from collections.abc import AsyncIterator

from server.core.context import AppContext
from server.core.plugin import Plugin
from server.directory.calendar import DirectoryCalendar
from server.directory.cli import register_cli
from server.directory.fhir_routes import setup_fhir
from server.directory.routes import api
from server.directory.seed import seed_demo


async def calendar_service(ctx: AppContext) -> AsyncIterator[None]:
    """Messaging asks `ctx.calendar` when a unit's inbox is staffed and where to escalate.

    A calendar set before start (a test's fixed office hours) is kept.
    """
    injected = ctx.calendar is not None
    if not injected:
        ctx.calendar = DirectoryCalendar(ctx)
    yield
    if not injected:
        ctx.calendar = None


PLUGIN = Plugin(
    name="directory",
    api=api,
    lifecycle=[calendar_service],
    setup_routes=setup_fhir,
    cli=register_cli,
    seed_demo=seed_demo,
)
