"""Guard against Swedish personal identity numbers (personnummer / samordningsnummer) in metadata."""

from __future__ import annotations

import re

# 6 or 8 digits of date, optional separator, 4 digits; not part of a longer digit run.
_CANDIDATE = re.compile(r"(?<!\d)(\d{2})?(\d{2})(\d{2})(\d{2})\s?[-+]?\s?(\d{4})(?!\d)")


def luhn_ok(digits: str) -> bool:
    total = 0
    for position, char in enumerate(digits):
        value = int(char) * (2 if position % 2 == 0 else 1)
        total += value - 9 if value > 9 else value
    return total % 10 == 0


def looks_like_personal_number(text: str) -> bool:
    """True when `text` contains a plausible personnummer or samordningsnummer (10/12 digits, Luhn)."""
    for match in _CANDIDATE.finditer(text):
        _century, year, month, day, tail = match.groups()
        month_no, day_no = int(month), int(day)
        if not 1 <= month_no <= 12:
            continue
        if not (1 <= day_no <= 31 or 61 <= day_no <= 91):  # samordningsnummer adds 60 to the day
            continue
        if luhn_ok(year + month + day + tail):
            return True
    return False
