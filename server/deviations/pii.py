"""What a deviation report may not contain: personal identity numbers, other people's phone numbers and e-mail
addresses. The reporter's own phone number and e-mail address are allowed (seed 000: "inga personuppgifter,
annat än kontaktuppgifter från uppgiftslämnaren")."""

from __future__ import annotations

import re

from server.messaging.pii import looks_like_personal_number

EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
# Swedish numbers (0..., +46..., 0046...) and international ones: 7 or more digits with spaces or dashes.
PHONE = re.compile(r"(?<![\w+])(?:\+|00)?\d(?:[\s\-/]?\d){6,14}(?!\w)")


def phone_digits(value: str) -> str:
    digits = re.sub(r"\D", "", value)
    if digits.startswith("0046"):
        digits = "0" + digits[4:]
    elif value.strip().startswith("+46"):
        digits = "0" + digits[2:]
    return digits


def personal_data_in(text: str, own_phone: str | None, own_email: str | None) -> list[str]:
    """Kinds of personal data found in `text`: personal_number, phone, email (never the values)."""
    found: list[str] = []
    if looks_like_personal_number(text):
        found.append("personal_number")
    own = phone_digits(own_phone) if own_phone else None
    for match in PHONE.finditer(text):
        if looks_like_personal_number(match.group(0)):
            continue
        if phone_digits(match.group(0)) != own:
            found.append("phone")
            break
    mine = own_email.lower() if own_email else None
    if any(match.group(0).lower() != mine for match in EMAIL.finditer(text)):
        found.append("email")
    return found
