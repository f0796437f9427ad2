"""How staff write a unit in a search box: Swedish abbreviations, "S:t", place names (no framework types).

A folded query (text.fold) is read word by word; each word becomes a list of alternatives, any of
which may match the folded name/aliases/town of a unit. "vc" also finds "Vårdcentral …", "säbo" the
äldreboenden, "S:t", "St" and "Sankt" one another. The search tiers (search.py) turn alternatives into
FTS5 or LIKE clauses. The table is data: add a row where users name a unit type in another way.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from server.directory.text import MUNICIPALITIES, fold


@dataclass(frozen=True)
class Alternative:
    """Folded words that must all be in the unit's text; `prefix`: the last may continue (vård → vårdcentral)."""

    words: tuple[str, ...]
    prefix: bool = True


def _alt(text: str, prefix: bool = True) -> Alternative:
    return Alternative(tuple(text.split()), prefix)


# Abbreviations and everyday forms (folded) → what unit names say. Short forms match only as whole
# words ("vc" must not find "vcxyz"); written-out forms also find their abbreviation.
_PRIMARY_CARE = (_alt("vc", False), _alt("vardcentral"), _alt("halsocentral"))
_NURSING_HOME = (_alt("sabo", False), _alt("sarskilt boende"), _alt("aldreboende"), _alt("omsorgsboende"))
_SHORT_TERM = (_alt("kas", False), _alt("korttidsboende"), _alt("korttidsavdelning"), _alt("korttidsvard"))
_HOME_HEALTH = (
    _alt("khs", False),
    _alt("hsl", False),
    _alt("hemsjukvard"),
    _alt("halso och sjukvard"),
)
_SAINT = (_alt("sankt"), _alt("st", False), _alt("s t", False))
ABBREVIATIONS: dict[str, tuple[Alternative, ...]] = {
    "vc": _PRIMARY_CARE,
    "vardcentral": _PRIMARY_CARE,
    "hc": _PRIMARY_CARE,
    "sabo": _NURSING_HOME,
    "aldreboende": _NURSING_HOME,
    "kas": _SHORT_TERM,
    "korttidsboende": _SHORT_TERM,
    "khs": _HOME_HEALTH,
    "hsl": _HOME_HEALTH,
    "hemsjukvard": _HOME_HEALTH,
    "sankt": _SAINT,
    "st": _SAINT,
    "sos": (_alt("sos", False), _alt("sodersjukhuset")),
}

# Municipalities by folded name: a query naming one is never "corrected" into an unrelated place.
MUNICIPALITY_OF: dict[str, str] = {fold(name): code for code, name in MUNICIPALITIES.items()}


def query_words(folded: str) -> list[str]:
    """The query's words with "s t" (from "S:t") joined into "sankt", so that it expands like "St"."""
    words = folded.split()
    joined: list[str] = []
    index = 0
    while index < len(words):
        if words[index] == "s" and index + 1 < len(words) and words[index + 1] == "t":
            joined.append("sankt")
            index += 2
            continue
        joined.append(words[index])
        index += 1
    return joined


def alternatives(word: str) -> tuple[Alternative, ...]:
    """What a query word may match: itself as a word prefix, or the forms of its abbreviation group."""
    return ABBREVIATIONS.get(word, (Alternative((word,)),))


def place_filter(words: list[str], known: Callable[[str], bool]) -> tuple[list[str], str | None]:
    """Take out a municipality the query names but no unit's text holds: (the other words, its SCB code).

    "vårdcentral salem" where Salem's units say "Rönninge" is a filter on the municipality, not a word
    to correct into some other place. Two-word names ("upplands bro") are read first.
    """
    for length in (2, 1):
        for start in range(len(words) - length + 1):
            name = " ".join(words[start : start + length])
            if name in MUNICIPALITY_OF and not all(known(word) for word in words[start : start + length]):
                return words[:start] + words[start + length :], MUNICIPALITY_OF[name]
    return words, None
