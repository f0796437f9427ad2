"""Opening hours arithmetic: TimeSpans, Swedish holidays and closures in Europe/Stockholm (DST-aware).

Pure functions over plain data (no database), so reachability, the calendar seam and FHIR agree.
Rules:
- A route without time spans has no restriction (usable around the clock, subject to closures).
- `from_day..to_day` (1 = Monday ... 7 = Sunday) may wrap (6..1 = Saturday to Monday).
- `to_time <= from_time` means the span runs past midnight into the next day (`00:00` = midnight).
- `holiday_rule`: `normal` ignores holidays, `closed_on_holidays` skips holidays and de facto holidays
  (Midsommarafton, Julafton, Nyårsafton), `holidays_only` applies on those days only. The rule looks at
  the day the span starts.
- Closures (unit-wide or per route) cut intervals; validity dates bound the whole route.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

import holidays

TZ = ZoneInfo("Europe/Stockholm")
DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
LOOKAHEAD = timedelta(days=21)

Interval = tuple[datetime, datetime]


@lru_cache(maxsize=64)
def _holidays(year: int) -> dict[date, str]:
    calendar = holidays.country_holidays(
        "SE", years=year, categories=("public", "de_facto"), include_sundays=False, language="sv"
    )
    return dict(calendar.items())


def holiday_name(day: date) -> str | None:
    """The Swedish public or de facto holiday on `day` (ordinary Sundays are not holidays here)."""
    return _holidays(day.year).get(day)


def is_holiday(day: date) -> bool:
    return holiday_name(day) is not None


@dataclass(frozen=True)
class Span:
    from_day: int
    to_day: int
    all_day: bool = False
    from_time: time | None = None
    to_time: time | None = None
    from_date: date | None = None
    to_date: date | None = None
    holiday_rule: str = "normal"
    comment: str | None = None

    def covers_weekday(self, isoweekday: int) -> bool:
        if self.from_day <= self.to_day:
            return self.from_day <= isoweekday <= self.to_day
        return isoweekday >= self.from_day or isoweekday <= self.to_day

    def applies_on(self, day: date) -> bool:
        if self.from_date is not None and day < self.from_date:
            return False
        if self.to_date is not None and day > self.to_date:
            return False
        if not self.covers_weekday(day.isoweekday()):
            return False
        if self.holiday_rule == "closed_on_holidays":
            return not is_holiday(day)
        if self.holiday_rule == "holidays_only":
            return is_holiday(day)
        return True

    def local_interval(self, day: date) -> tuple[datetime, datetime]:
        """The span's interval starting on `day`, as aware Europe/Stockholm datetimes."""
        if self.all_day or self.from_time is None or self.to_time is None:
            start = datetime.combine(day, time(0), TZ)
            return start, datetime.combine(day + timedelta(days=1), time(0), TZ)
        start = datetime.combine(day, self.from_time, TZ)
        end_day = day if self.to_time > self.from_time else day + timedelta(days=1)
        return start, datetime.combine(end_day, self.to_time, TZ)

    def describe(self) -> str:
        days = (
            DAY_NAMES[self.from_day - 1]
            if self.from_day == self.to_day
            else (f"{DAY_NAMES[self.from_day - 1]}-{DAY_NAMES[self.to_day - 1]}")
        )
        hours = (
            "all day"
            if self.all_day or self.from_time is None or self.to_time is None
            else (f"{self.from_time:%H:%M}-{self.to_time:%H:%M}")
        )
        text = f"{days} {hours}"
        if self.from_date or self.to_date:
            text += f" ({self.from_date or '…'} – {self.to_date or '…'})"
        if self.holiday_rule == "closed_on_holidays":
            text += ", closed on public holidays and Midsummer/Christmas/New Year's Eve"
        elif self.holiday_rule == "holidays_only":
            text += ", on public holidays only"
        return text


@dataclass(frozen=True)
class RouteHours:
    spans: Sequence[Span] = ()
    valid_from: date | None = None
    valid_to: date | None = None
    closures: Sequence[Interval] = field(default_factory=tuple)  # UTC, closures of the route or its unit


def to_utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        return value.replace(tzinfo=TZ).astimezone(UTC)  # naive input means Stockholm local time
    return value.astimezone(UTC)


def merge(intervals: Iterable[Interval]) -> list[Interval]:
    merged: list[Interval] = []
    for start, end in sorted(intervals):
        if end <= start:
            continue
        if merged and start <= merged[-1][1]:
            if end > merged[-1][1]:
                merged[-1] = (merged[-1][0], end)
        else:
            merged.append((start, end))
    return merged


def subtract(intervals: list[Interval], holes: Iterable[Interval]) -> list[Interval]:
    result = intervals
    for hole_start, hole_end in holes:
        next_result: list[Interval] = []
        for start, end in result:
            if hole_end <= start or hole_start >= end:
                next_result.append((start, end))
                continue
            if start < hole_start:
                next_result.append((start, hole_start))
            if hole_end < end:
                next_result.append((hole_end, end))
        result = next_result
    return result


def _validity(hours: RouteHours, start: datetime, end: datetime) -> Interval | None:
    low, high = start, end
    if hours.valid_from is not None:
        low = max(low, datetime.combine(hours.valid_from, time(0), TZ).astimezone(UTC))
    if hours.valid_to is not None:
        high = min(high, datetime.combine(hours.valid_to + timedelta(days=1), time(0), TZ).astimezone(UTC))
    return (low, high) if high > low else None


def open_intervals(hours: RouteHours, start: datetime, end: datetime) -> list[Interval]:
    """Sorted, merged UTC intervals within [start, end) when the route is usable."""
    start, end = to_utc(start), to_utc(end)
    window = _validity(hours, start, end)
    if window is None:
        return []
    low, high = window
    if not hours.spans:
        raw = [(low, high)]
    else:
        raw = []
        day = low.astimezone(TZ).date() - timedelta(days=1)  # a span from yesterday may run past midnight
        last = high.astimezone(TZ).date()
        while day <= last:
            for span in hours.spans:
                if span.applies_on(day):
                    local_start, local_end = span.local_interval(day)
                    raw.append((max(local_start.astimezone(UTC), low), min(local_end.astimezone(UTC), high)))
            day += timedelta(days=1)
    return subtract(merge(raw), hours.closures)


def is_open(hours: RouteHours, at: datetime) -> bool:
    at = to_utc(at)
    return bool(open_intervals(hours, at, at + timedelta(seconds=1)))


def next_opening(hours: RouteHours, at: datetime, horizon: timedelta = LOOKAHEAD) -> datetime | None:
    """The first instant after `at` when the route becomes usable (None if not within the horizon)."""
    at = to_utc(at)
    for start, _end in open_intervals(hours, at, at + horizon):
        if start > at:
            return start
    return None
