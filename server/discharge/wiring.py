"""How the discharge service is built from the app context (for the plugin and the demo seed)."""

from __future__ import annotations

from server.core.calendar import AlwaysOpen, UnitCalendar
from server.core.context import AppContext
from server.discharge.pseudonym import Pseudonyms
from server.discharge.service import DischargeService
from server.messaging.events import MESSAGING


def build_service(ctx: AppContext) -> DischargeService:
    messaging = ctx.need(MESSAGING)

    def calendar() -> UnitCalendar:
        return ctx.calendar or AlwaysOpen()

    return DischargeService(
        ctx.db,
        messaging,
        Pseudonyms(ctx.settings.effective_pseudonym_key_file),
        clock=lambda: ctx.clock(),
        deadlines=ctx.deadlines,
        calendar=calendar,
        min_cell=ctx.settings.statistics_min_cell,
    )
