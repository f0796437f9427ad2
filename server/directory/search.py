"""Unit search: case/accent-insensitive, prefix, typo-tolerant; exact and prefix hits rank above fuzzy ones.

SQLite (default): three tiers, each a cheap indexed query with a LIMIT:
  1. `exact`/`prefix`: the folded name starts with the folded query (B-tree range on `units.search_name`);
  2. `words`: every query word is a prefix of a word in the name, aliases, town or HSA-id (FTS5 `"w"*`);
  3. `fuzzy`: words unknown to the index are corrected against the FTS5 vocabulary (Levenshtein ≤ 1–2,
     rapidfuzz) and the corrected words are searched like tier 2.
PostgreSQL: the same tiers with `LIKE` on the folded columns (pg_trgm GIN indexes) and `word_similarity`
(`<%`) for the fuzzy tier; the query is also passed through `unaccent`.

Pagination: an opaque cursor (base64url JSON). Listing without `q` is keyset on (folded name, id); ranked
results use an offset into the ranking (at most MAX_RANKED hits).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from rapidfuzz import process
from rapidfuzz.distance import Levenshtein
from sqlalchemy import and_, column, or_, select, table, text
from sqlalchemy.ext.asyncio import AsyncSession

from server.core.errors import Problem
from server.core.models import Organisation, Unit
from server.directory.text import fold

MAX_RANKED = 1000
HSA_LIKE = re.compile(r"^SE\d{4,}", re.IGNORECASE)
SORT_CAP = 30  # FTS hits up to this many are sorted by name; more keep index order
FUZZY_SIMILARITY = 0.7  # PostgreSQL word_similarity needed for a fuzzy hit
VOCAB_TTL = 300.0  # seconds a process keeps the typo-correction vocabulary (writes here reset it)


@dataclass
class Filters:
    unit_type: str | None = None
    municipality: str | None = None
    organisation: uuid.UUID | None = None
    include_inactive: bool = False


@dataclass
class Hit:
    unit_id: uuid.UUID
    match: str | None
    cursor: dict[str, Any]  # position right after this hit
    row: Any = None  # the SUMMARY columns when the search query already read them


# What a result list shows, read by the search queries themselves (saves a query per search):
# id, folded name, name, type, HSA-id, municipality code, town, organisation id, organisation name.
SUMMARY = (
    Unit.id,
    Unit.search_name,
    Unit.name,
    Unit.unit_type,
    Unit.hsa_id,
    Unit.municipality_code,
    Unit.town,
    Organisation.id,
    Organisation.name,
)


def summary_select() -> Any:
    return select(*SUMMARY).join(Organisation, Organisation.id == Unit.organisation_id)


@dataclass
class Batch:
    hits: list[Hit]
    exhausted: bool
    corrected: str | None = None


def encode_cursor(position: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(position, separators=(",", ":")).encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> dict[str, Any]:
    if not cursor:
        return {}
    try:
        data = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        data = None
    if not isinstance(data, dict):
        raise Problem("invalid_cursor", "The cursor is not valid; start again without it.", status=400)
    return data


def _filter_clauses(filters: Filters) -> list[Any]:
    clauses: list[Any] = [Unit.deleted_at.is_(None)]
    if not filters.include_inactive:
        clauses.append(Unit.active.is_(True))
    if filters.unit_type:
        clauses.append(Unit.unit_type == filters.unit_type)
    if filters.municipality:
        clauses.append(Unit.municipality_code == filters.municipality)
    if filters.organisation:
        clauses.append(Unit.organisation_id == filters.organisation)
    return clauses


async def listing(session: AsyncSession, filters: Filters, position: dict[str, Any], size: int) -> Batch:
    """All units by folded name, keyset-paginated."""
    query = summary_select().where(*_filter_clauses(filters))
    if "n" in position:
        last_name, last_id = str(position["n"]), uuid.UUID(str(position["i"]))
        query = query.where(or_(Unit.search_name > last_name, and_(Unit.search_name == last_name, Unit.id > last_id)))
    rows = (await session.execute(query.order_by(Unit.search_name, Unit.id).limit(size))).all()
    hits = [Hit(row[0], None, {"n": row[1], "i": str(row[0])}, row) for row in rows]
    return Batch(hits, exhausted=len(rows) < size)


async def ranked(session: AsyncSession, q: str, filters: Filters, position: dict[str, Any], size: int) -> Batch:
    folded = fold(q)
    if not folded:
        return await listing(session, filters, position, size)
    offset = int(position.get("o", 0))
    if offset >= MAX_RANKED:
        return Batch([], exhausted=True)
    need = min(offset + size, MAX_RANKED)
    ranking = Ranking(need)
    corrected: str | None = None
    raw = q.strip()
    if HSA_LIKE.match(raw):  # HSA-ids match on their unique index: exact, then prefix
        rows = await session.execute(
            summary_select()
            .where(Unit.hsa_id >= raw, Unit.hsa_id < raw + "\uffff", *_filter_clauses(filters))
            .order_by(Unit.hsa_id)
            .limit(need)
        )
        found = rows.all()
        ranking.add([row for row in found if row[4] == raw], "exact")
        ranking.add(found, "prefix")
    if not ranking.full:
        if session.get_bind().dialect.name == "postgresql":
            await _ranked_postgresql(session, folded, filters, ranking)
        else:
            corrected = await _ranked_sqlite(session, folded, filters, ranking)
    window = ranking.hits[offset : offset + size]
    hits = [
        Hit(unit_id, match, {"o": offset + index + 1}, ranking.rows.get(unit_id))
        for index, (unit_id, match) in enumerate(window)
    ]
    return Batch(hits, exhausted=len(ranking.hits) < need or need >= MAX_RANKED, corrected=corrected)


# --------------------------------------------------------------------------------------------- SQLite


FTS = table("unit_search", column("rowid"))


async def optimize_index(session: AsyncSession) -> None:
    """Merge the FTS5 segments after bulk writes (about 1 s per 100k units; queries get ~2x faster)."""
    if session.get_bind().dialect.name == "sqlite":
        await session.execute(text("INSERT INTO unit_search(unit_search) VALUES ('optimize')"))


def _fts_query(words: Sequence[str]) -> str:
    return " ".join(f'"{word}"*' for word in words)


async def _fts(session: AsyncSession, words: Sequence[str], filters: Filters, limit: int) -> list[Any]:
    """Units where every word is a word prefix in the name, aliases or town (FTS5).

    Small result sets (< SORT_CAP) are ordered with name matches first, then by name; larger ones keep the
    index order. No bm25 ORDER BY: scoring every match of a broad prefix ("vard*" hits ~15% of units)
    costs hundreds of milliseconds at 100k units, while index order with a LIMIT stops early. Either way
    the order is deterministic, so offsets in cursors stay valid.
    """
    fetch = max(limit, SORT_CAP)
    query = (
        select(*SUMMARY)
        .select_from(FTS)
        .join(Unit, Unit.search_key == FTS.c.rowid)
        .join(Organisation, Organisation.id == Unit.organisation_id)
        .where(text("unit_search MATCH :match"), *_filter_clauses(filters))
        .limit(fetch)
    )
    rows = list((await session.execute(query, {"match": _fts_query(words)})).all())
    if len(rows) < fetch:

        def in_name(name: str) -> bool:
            name_words = name.split()
            return all(any(part.startswith(word) for part in name_words) for word in words)

        rows.sort(key=lambda row: (not in_name(row[1]), row[1], row[0]))
    return rows[:limit]


class Ranking:
    """Hits in tier order, each unit once."""

    def __init__(self, need: int) -> None:
        self.need = need
        self.hits: list[tuple[uuid.UUID, str]] = []
        self.rows: dict[uuid.UUID, Any] = {}

    def add(self, found: Sequence[Any], match: str) -> None:
        """Add unit ids, or SUMMARY rows (whose first column is the id)."""
        for item in found:
            unit_id = item if isinstance(item, uuid.UUID) else item[0]
            if unit_id not in self.rows:
                self.rows[unit_id] = None if isinstance(item, uuid.UUID) else item
                self.hits.append((unit_id, match))

    @property
    def full(self) -> bool:
        return len(self.hits) >= self.need


async def _words(session: AsyncSession, words: Sequence[str], filters: Filters, ranking: Ranking, match: str) -> None:
    ranking.add(await _fts(session, words, filters, ranking.need), match)


async def _ranked_sqlite(session: AsyncSession, folded: str, filters: Filters, ranking: Ranking) -> str | None:
    rows = await session.execute(
        summary_select()
        .where(Unit.search_name >= folded, Unit.search_name < folded + "\uffff", *_filter_clauses(filters))
        .order_by(Unit.search_name, Unit.id)
        .limit(ranking.need)
    )
    prefix_rows = rows.all()
    ranking.add([row for row in prefix_rows if row[1] == folded], "exact")
    ranking.add(prefix_rows, "prefix")
    words = folded.split()
    if ranking.full:
        return None
    vocabulary = await Vocabulary.get(session)
    if all(vocabulary.known_prefix(word) for word in words):  # else the words tier cannot match
        await _words(session, words, filters, ranking, "words")
        if ranking.full:
            return None
    corrected = vocabulary.correct(words)
    if corrected is None:
        return None
    await _words(session, corrected, filters, ranking, "fuzzy")
    return " ".join(corrected)


@dataclass
class Vocabulary:
    """FTS5 terms with document counts, cached per process for VOCAB_TTL seconds (or until invalidated)."""

    terms: list[str]
    docs: dict[str, int]
    loaded: float
    by_initial: dict[str, list[str]] = field(default_factory=dict)

    _cache: ClassVar[Vocabulary | None] = None

    @classmethod
    def invalidate(cls) -> None:
        cls._cache = None

    @classmethod
    async def get(cls, session: AsyncSession) -> Vocabulary:
        cached = cls._cache
        if cached is not None and time.monotonic() - cached.loaded < VOCAB_TTL:
            return cached
        # Terms starting with a letter (digits sort first and are never corrected), letters only.
        rows = (await session.execute(text("SELECT term, doc FROM unit_search_vocab WHERE term >= 'a'"))).all()
        docs = {str(term): int(doc) for term, doc in rows if str(term).isalpha()}
        vocabulary = cls(terms=sorted(docs), docs=docs, loaded=time.monotonic())
        for term in vocabulary.terms:
            vocabulary.by_initial.setdefault(term[:1], []).append(term)
        cls._cache = vocabulary
        return vocabulary

    def known_prefix(self, word: str) -> bool:
        """True if some indexed word starts with `word` (words with digits are never corrected: True)."""
        import bisect

        if not word.isalpha():
            return True
        index = bisect.bisect_left(self.terms, word)
        return index < len(self.terms) and self.terms[index].startswith(word)

    def correct_word(self, word: str) -> str | None:
        """The most frequent term within edit distance 1 (≤ 6 letters) or 2, as a whole word or as a prefix."""
        if len(word) < 4:
            return None
        limit = 1 if len(word) <= 6 else 2
        candidates = self.terms if len(self.terms) < 5000 else self.by_initial.get(word[:1], [])
        best: tuple[int, int, str] | None = None
        for term, distance, _index in process.extract(
            word, candidates, scorer=Levenshtein.distance, score_cutoff=limit, limit=10
        ):
            key = (distance, -self.docs.get(term, 0), term)
            best = key if best is None or key < best else best
        if best is None:  # a typo inside a word still being typed: compare with term prefixes
            prefixes = [term[: len(word)] for term in candidates]
            for prefix, distance, index in process.extract(
                word, prefixes, scorer=Levenshtein.distance, score_cutoff=limit, limit=10
            ):
                term = candidates[index]
                key = (distance + 1, -self.docs.get(term, 0), prefix)
                best = key if best is None or key < best else best
        return best[2] if best else None

    def correct(self, words: Sequence[str]) -> list[str] | None:
        corrected: list[str] = []
        changed = False
        for word in words:
            if self.known_prefix(word):
                corrected.append(word)
                continue
            replacement = self.correct_word(word)
            if replacement is None:
                return None
            corrected.append(replacement)
            changed = True
        return corrected if changed else None


# --------------------------------------------------------------------------------------------- PostgreSQL


async def _ranked_postgresql(session: AsyncSession, folded: str, filters: Filters, ranking: Ranking) -> None:
    words = folded.split()
    params: dict[str, Any] = {"f": folded, "fp": folded + "%", "need": ranking.need, "min": FUZZY_SIMILARITY}
    word_clauses = []
    for index, word in enumerate(words):
        params[f"w{index}"] = f"% {word}%"
        word_clauses.append(f"(' ' || search_text) LIKE unaccent(:w{index})")
    all_words = " AND ".join(word_clauses)
    where = ["deleted_at IS NULL"]
    if not filters.include_inactive:
        where.append("active")
    if filters.unit_type:
        where.append("unit_type = :unit_type")
        params["unit_type"] = filters.unit_type
    if filters.municipality:
        where.append("municipality_code = :municipality")
        params["municipality"] = filters.municipality
    if filters.organisation:
        where.append("organisation_id = :organisation")
        params["organisation"] = filters.organisation
    conditions = " AND ".join(where)
    # Only bind parameters and fixed fragments are interpolated into these queries.
    direct = f"""
        SELECT id, CASE WHEN search_name = unaccent(:f) THEN 0 WHEN search_name LIKE unaccent(:fp) THEN 1 ELSE 2 END
        FROM units
        WHERE {conditions} AND (search_name LIKE unaccent(:fp) OR ({all_words}))
        ORDER BY 2, search_name, id
        LIMIT :need
    """  # noqa: S608  # nosec B608
    names = {0: "exact", 1: "prefix", 2: "words"}
    for row in (await session.execute(text(direct), params)).all():
        ranking.add([row[0]], names[int(row[1])])
    if ranking.full:
        return
    fuzzy = f"""
        SELECT id FROM units
        WHERE {conditions} AND unaccent(:f) <% search_text AND word_similarity(unaccent(:f), search_text) >= :min
          AND NOT (search_name LIKE unaccent(:fp) OR ({all_words}))
        ORDER BY word_similarity(unaccent(:f), search_text) DESC, search_name, id
        LIMIT :need
    """  # noqa: S608  # nosec B608
    rows = (await session.execute(text(fuzzy), params)).all()
    ranking.add([row[0] for row in rows], "fuzzy")
