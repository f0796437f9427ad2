"""The LUS clocks of a case: defaults from the law and the regional agreement, configurable per region.

Sources of each default (docs/discharge.md has the full references):
* admission notice within 24 hours of admission: lag (2017:612) and prop. 2016/17:106;
* SIP called within 3 days of the ready-for-discharge notice: vardhandboken.se, "Utskrivningsklar";
* payment responsibility 3 calendar days after the ready-for-discharge notice, when the municipality
  got both notices: lag (2017:612) as summarised by JP Infonet (Läkartidningen 2017-11 writes "tre
  vardagar": set `payment_day_kind = "weekdays"` where the region and municipalities agreed so).

Pure functions: the service stores what happened, these say what is due when. Each clock runs as a
kind of timer on the core deadline engine (server/core/deadlines.py): a milestone in `STARTS` schedules
it, one in `STOPS` cancels it, and the service's `fire_clock` escalates when it falls due.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Literal

from server.core.calendar import STOCKHOLM, start_of_day
from server.core.deadlines import DeadlineKind

Clock = Literal["admission_notice", "sip_call", "payment"]
CLOCKS: tuple[Clock, ...] = ("admission_notice", "sip_call", "payment")
KINDS: dict[Clock, DeadlineKind] = {clock: DeadlineKind(f"discharge.{clock}") for clock in CLOCKS}
CLOCK_OF_KIND: dict[str, Clock] = {kind.name: clock for clock, kind in KINDS.items()}
# Which clocks a milestone starts (the case opening starts the admission notice clock) and stops.
STARTS: dict[str, tuple[Clock, ...]] = {"opened": ("admission_notice",), "ready_for_discharge": ("sip_call", "payment")}
STOPS: dict[str, tuple[Clock, ...]] = {
    "admission_notice": ("admission_notice",),
    "sip_called": ("sip_call",),
    "interrupted": ("sip_call", "payment"),
    "discharged": CLOCKS,
}


@dataclass(frozen=True)
class Rules:
    admission_notice_hours: int = 24
    sip_call_days: int = 3
    payment_days: int = 3
    payment_day_kind: str = "calendar"  # calendar | weekdays
    escalation_minutes: int = 60  # open time of the responsible unit between escalation levels


DEFAULT_RULES = Rules()


@dataclass(frozen=True)
class ClockState:
    clock: Clock
    side: str  # who must act: ward | primary_care | municipality
    started_at: datetime
    due_at: datetime
    done_at: datetime | None

    def state(self, now: datetime) -> str:
        """running | met | missed; the payment clock: pending | active | ended."""
        if self.clock == "payment":
            if self.done_at is not None:
                return "ended"
            return "active" if now >= self.due_at else "pending"
        if self.done_at is not None:
            return "met" if self.done_at <= self.due_at else "missed"
        return "missed" if now >= self.due_at else "running"


def local_date(at: datetime) -> date:
    return at.astimezone(STOCKHOLM).date()


def month_of(at: datetime) -> str:
    return at.astimezone(STOCKHOLM).strftime("%Y-%m")


def add_days(day: date, days: int, kind: str) -> date:
    if kind == "calendar":
        return day + timedelta(days=days)
    while days > 0:  # weekdays: Saturday and Sunday do not count
        day += timedelta(days=1)
        if day.weekday() < 5:
            days -= 1
    return day


def payment_start(rules: Rules, ready_at: datetime, admission_notice_at: datetime | None) -> datetime | None:
    """When the municipality's payment responsibility starts: only if it got both notices."""
    if admission_notice_at is None:
        return None
    return start_of_day(add_days(local_date(ready_at), rules.payment_days, rules.payment_day_kind))


def days_between(start: datetime | None, end: datetime) -> int:
    """Calendar days (Stockholm) from the day of `start` up to, not including, the day of `end`."""
    if start is None:
        return 0
    return max(0, (local_date(end) - local_date(start)).days)


def clocks(
    rules: Rules,
    *,
    admitted_at: datetime,
    admission_notice_at: datetime | None,
    ready_at: datetime | None,
    sip_called_at: datetime | None,
    payment_from: datetime | None,
    discharged_at: datetime | None,
) -> list[ClockState]:
    result = [
        ClockState(
            "admission_notice",
            "ward",
            admitted_at,
            admitted_at + timedelta(hours=rules.admission_notice_hours),
            admission_notice_at,
        )
    ]
    if ready_at is not None:
        done = sip_called_at or discharged_at  # a discharge ends the clock too
        result.append(
            ClockState("sip_call", "primary_care", ready_at, ready_at + timedelta(days=rules.sip_call_days), done)
        )
        if payment_from is not None:
            result.append(ClockState("payment", "municipality", ready_at, payment_from, discharged_at))
    return result
