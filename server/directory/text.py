"""Directory vocabulary, identifiers and the text folding that search relies on (no framework types)."""

from __future__ import annotations

import re
import unicodedata

ORG_KINDS = ("region", "municipality", "private")
UNIT_TYPES = (
    "ward",
    "primary_care",
    "home_care",
    "nursing_home",
    "short_term_care",
    "municipal_health_care",
    "social_services",
)
PURPOSES = ("general", "discharge_planning", "weekend_discharge", "on_call", "switchboard", "medication", "other")
CHANNELS = ("phone", "secure_message", "video", "email", "fax", "sip_text")
AUDIENCES = ("public", "staff")
HOLIDAY_RULES = ("normal", "holidays_only", "closed_on_holidays")

HSA_ID = re.compile(r"^SE\d{10}-[A-Za-z0-9]+$")
HSA_ID_MAX = 31
ORG_NUMBER = re.compile(r"^\d{10}$")
POSTAL_CODE = re.compile(r"^\d{5}$")

# Stockholm County (län 01): the 26 municipality codes (SCB) and names.
MUNICIPALITIES: dict[str, str] = {
    "0114": "Upplands Väsby",
    "0115": "Vallentuna",
    "0117": "Österåker",
    "0120": "Värmdö",
    "0123": "Järfälla",
    "0125": "Ekerö",
    "0126": "Huddinge",
    "0127": "Botkyrka",
    "0128": "Salem",
    "0136": "Haninge",
    "0138": "Tyresö",
    "0139": "Upplands-Bro",
    "0140": "Nykvarn",
    "0160": "Täby",
    "0162": "Danderyd",
    "0163": "Sollentuna",
    "0180": "Stockholm",
    "0181": "Södertälje",
    "0182": "Nacka",
    "0183": "Sundbyberg",
    "0184": "Solna",
    "0186": "Lidingö",
    "0187": "Vaxholm",
    "0188": "Norrtälje",
    "0191": "Sigtuna",
    "0192": "Nynäshamn",
}

_WORD = re.compile(r"[a-z0-9]+")


def luhn_valid(digits: str) -> bool:
    """The Luhn (mod 10) check used by Swedish organisation numbers."""
    if not digits.isdigit():
        return False
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = int(char)
        if index % 2 == 1:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0


def luhn_complete(first_nine: str) -> str:
    """Append the check digit to nine digits (used by the generators)."""
    for check in range(10):
        if luhn_valid(first_nine + str(check)):
            return first_nine + str(check)
    raise ValueError("unreachable")


def org_number_problem(value: str) -> str | None:
    if not ORG_NUMBER.match(value):
        return "an organisation number has exactly 10 digits (no dash)"
    if not luhn_valid(value):
        return "the organisation number's check digit (Luhn) is wrong"
    return None


def hsa_id_problem(value: str) -> str | None:
    if len(value) > HSA_ID_MAX:
        return f"an HSA-id is at most {HSA_ID_MAX} characters"
    if not HSA_ID.match(value):
        return "an HSA-id looks like SE<10 digits>-<letters A-Z/digits>, e.g. SE2321000016-7AV52"
    return None


def fold(text: str) -> str:
    """Lower case, strip diacritics (å→a, ä→a, ö→o, é→e), collapse everything else to single spaces."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    stripped = "".join(char for char in decomposed if not unicodedata.combining(char))
    return " ".join(_WORD.findall(stripped))


def tokens(text: str) -> list[str]:
    return fold(text).split()


def search_key(unit_id_int: int) -> int:
    """A positive 63-bit integer derived from a UUID's integer value (the unit's FTS rowid)."""
    return unit_id_int >> 65
