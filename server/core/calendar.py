"""When a unit can be reached: the seam between the directory and messaging escalation.

The directory plugin sets its implementation as `ctx.calendar`; without a
directory everything counts as always open.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from typing import Protocol
from zoneinfo import ZoneInfo

STOCKHOLM = ZoneInfo("Europe/Stockholm")


def start_of_day(day: date) -> datetime:
    """Midnight at the start of `day` in Swedish time, as UTC."""
    return datetime.combine(day, time(0), STOCKHOLM).astimezone(UTC)


@dataclass(frozen=True)
class RouteRef:
    """A contact route as messaging shows it in an escalation (never personal data)."""

    route_id: uuid.UUID | None
    purpose: str  # general | discharge_planning | weekend_discharge | on_call | ...
    channel: str  # phone | secure_message | video | email | ...
    label: str
    value: str


class UnitCalendar(Protocol):
    async def open_intervals(
        self, unit_id: uuid.UUID, start: datetime, end: datetime
    ) -> list[tuple[datetime, datetime]]:
        """Intervals within [start, end) when the unit's secure-message inbox is staffed, sorted, UTC."""
        ...

    async def escalation_routes(self, unit_id: uuid.UUID, at: datetime) -> list[RouteRef]:
        """Routes reachable at `at`, best first, to turn to when the inbox does not answer."""
        ...


class AlwaysOpen:
    async def open_intervals(
        self, unit_id: uuid.UUID, start: datetime, end: datetime
    ) -> list[tuple[datetime, datetime]]:
        return [(start, end)] if end > start else []

    async def escalation_routes(self, unit_id: uuid.UUID, at: datetime) -> list[RouteRef]:
        return []
