"""HSA TimeSpan strings: `fromDay#toDay#fromTime#toTime[#comment[#fromDate[#toDate[#holidayRule]]]]`.

Shared by the importer, the exporter and FHIR (which renders the same strings in an extension).
"""

from __future__ import annotations

import re
from datetime import date, time
from typing import Any

from pydantic import ValidationError

from server.directory import schemas as s
from server.directory.models import TimeSpan


def first_error(exc: ValidationError) -> str:
    """The first validation error as `field.path: message`."""
    error = exc.errors()[0]
    where = ".".join(str(part) for part in error.get("loc", ()))
    message = str(error.get("msg", "invalid")).removeprefix("Value error, ")
    return f"{where}: {message}" if where else message


CLOCK = re.compile(r"(\d{1,2}):(\d{2})(?::(\d{2}))?")
ALWAYS = ("always", "alltid")  # the explicit word for "no restriction" in a file


def _clock(text: str, field: str) -> time | None:
    """`HH:MM` or `HH:MM:SS` and nothing else; `24:00` (and HSA's `23:59` as a day's last minute) = end of day."""
    match = CLOCK.fullmatch(text.strip())
    if match is None:
        raise ValueError(f"{field} '{text}' is not a time like 08:00")
    hours, minutes, seconds = (int(part or 0) for part in match.groups())
    if (hours, minutes, seconds) in ((24, 0, 0), (23, 59, 0), (23, 59, 59)):
        return None  # end of day
    if hours > 23 or minutes > 59 or seconds > 59:
        raise ValueError(f"{field} '{text}' is not a time of day (00:00 to 24:00)")
    return time(hours, minutes)


def parse_timespan(text: str) -> s.TimeSpanIn:
    """`fromDay#toDay#fromTime#toTime[#comment[#fromDate[#toDate[#holidayRule]]]]` → TimeSpanIn."""
    parts = text.strip().split("#")
    if not 4 <= len(parts) <= 8:
        raise ValueError(f"TimeSpan '{text}' needs 4 to 8 '#'-separated parts (fromDay#toDay#fromTime#toTime...)")
    from_day, to_day = parts[0].strip(), parts[1].strip()
    if not (from_day.isdigit() and to_day.isdigit()):
        raise ValueError(f"TimeSpan '{text}': fromDay/toDay are numbers 1 (Monday) to 7 (Sunday)")
    try:
        start, end = _clock(parts[2], "fromTime"), _clock(parts[3], "toTime")
    except ValueError as exc:
        raise ValueError(f"TimeSpan '{text}': {exc}") from None
    if start is None:
        raise ValueError(f"TimeSpan '{text}': fromTime cannot be 24:00")
    all_day = start == time(0) and end is None
    values: dict[str, Any] = {
        "from_day": int(from_day),
        "to_day": int(to_day),
        "all_day": all_day,
        "from_time": None if all_day else start,
        "to_time": None if all_day else (end or time(0)),
    }
    if len(parts) > 4 and parts[4].strip():
        values["comment"] = parts[4].strip()
    for index, key, name in ((5, "from_date", "fromDate"), (6, "to_date", "toDate")):
        if len(parts) > index and parts[index].strip():
            try:
                values[key] = date.fromisoformat(parts[index].strip())
            except ValueError:
                raise ValueError(f"TimeSpan '{text}': {name} '{parts[index]}' is not a date like 2026-06-01") from None
    if len(parts) > 7 and parts[7].strip():
        values["holiday_rule"] = parts[7].strip()
    try:
        return s.TimeSpanIn.model_validate(values)
    except ValidationError as exc:
        raise ValueError(f"TimeSpan '{text}': {first_error(exc)}") from None


def format_timespan(span: s.TimeSpanIn | TimeSpan) -> str:
    if span.all_day or span.from_time is None or span.to_time is None:
        start, end = "00:00", "24:00"
    else:
        start, end = f"{span.from_time:%H:%M}", f"{span.to_time:%H:%M}"
    parts = [str(span.from_day), str(span.to_day), start, end, (span.comment or "").replace("#", " ").replace(";", ",")]
    parts += [span.from_date.isoformat() if span.from_date else "", span.to_date.isoformat() if span.to_date else ""]
    parts.append(span.holiday_rule if span.holiday_rule != "normal" else "")
    while len(parts) > 4 and not parts[-1]:
        parts.pop()
    return "#".join(parts)
