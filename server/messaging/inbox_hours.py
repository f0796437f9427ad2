"""Is a unit's secure-message inbox staffed now? If not: its next opening and the routes to use now.

The same calendar that times escalations (server.core.calendar), so the composer's warning and the
escalation that would follow agree.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from server.core.calendar import UnitCalendar
from server.messaging.schemas import EscalationRouteOut, InboxHours

LOOKAHEAD = timedelta(days=21)


async def inbox_hours(calendar: UnitCalendar, unit_id: uuid.UUID, now: datetime) -> InboxHours:
    intervals = await calendar.open_intervals(unit_id, now, now + LOOKAHEAD)
    open_now = bool(intervals) and intervals[0][0] <= now < intervals[0][1]
    routes = [] if open_now else await calendar.escalation_routes(unit_id, now)
    return InboxHours(
        unit_id=unit_id,
        open_now=open_now,
        next_opening=None if open_now or not intervals else intervals[0][0],
        use_now=[
            EscalationRouteOut(
                route_id=route.route_id,
                purpose=route.purpose,
                channel=route.channel,
                label=route.label,
                value=route.value,
            )
            for route in routes
        ],
    )
