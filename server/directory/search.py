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
import bisect
import json
import re
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from functools import cache
from typing import Any, ClassVar

from rapidfuzz import process
from rapidfuzz.distance import Levenshtein
from sqlalchemy import Integer, and_, bindparam, column, literal_column, or_, select, table, text
from sqlalchemy.dialects import sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from server.core.errors import Problem
from server.core.models import Organisation, Unit
from server.core.prepared import Prepared
from server.directory.query_words import Alternative, alternatives, place_filter, query_words
from server.directory.text import fold

MAX_RANKED = 1000
HSA_LIKE = re.compile(r"^SE\d{4,}", re.IGNORECASE)
HSA_LOCAL_LIKE = re.compile(r"^[A-Za-z0-9]{3,}$")  # one token: maybe the part after the dash of an HSA-id
SORT_CAP = 30  # FTS hits up to this many are sorted by name; more keep index order
FUZZY_SIMILARITY = 0.7  # PostgreSQL word_similarity needed for a fuzzy hit
VOCAB_TTL = 300.0  # seconds a process keeps the typo-correction vocabulary (writes here reset it)
EXPAND_MIN = 5  # query words this long are expanded to the indexed words they begin (shorter: prefix indexes)
EXPAND_MAX = 32  # at most this many indexed words per query word, else a plain FTS5 prefix query
INFIX_MIN = 4  # query words this long may match inside a compound word


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


FilterShape = tuple[bool, bool, bool, bool]


def _shape(filters: Filters) -> FilterShape:
    return (filters.include_inactive, bool(filters.unit_type), bool(filters.municipality), bool(filters.organisation))


def _bound_filter_clauses(shape: FilterShape) -> list[Any]:
    """The clauses of `_filter_clauses` with bind parameters, for statements built once per filter shape."""
    include_inactive, by_type, by_municipality, by_organisation = shape
    clauses: list[Any] = [Unit.deleted_at.is_(None)]
    if not include_inactive:
        clauses.append(Unit.active.is_(True))
    if by_type:
        clauses.append(Unit.unit_type == bindparam("unit_type", type_=Unit.unit_type.type))
    if by_municipality:
        clauses.append(Unit.municipality_code == bindparam("municipality", type_=Unit.municipality_code.type))
    if by_organisation:
        clauses.append(Unit.organisation_id == bindparam("organisation", type_=Unit.organisation_id.type))
    return clauses


def _filter_params(filters: Filters) -> dict[str, Any]:
    params: dict[str, Any] = {}
    if filters.unit_type:
        params["unit_type"] = filters.unit_type
    if filters.municipality:
        params["municipality"] = filters.municipality
    if filters.organisation:
        params["organisation"] = filters.organisation
    return params


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
    if HSA_LIKE.match(raw):  # HSA-ids match on their unique index: exact, then prefix (any case)
        upper = raw.upper()
        rows = await session.execute(
            summary_select()
            .where(or_(Unit.hsa_id == raw, and_(Unit.hsa_id >= upper, Unit.hsa_id < upper + "\uffff")))
            .where(*_filter_clauses(filters))
            .order_by(Unit.hsa_id)
            .limit(need)
        )
        found = rows.all()
        ranking.add([row for row in found if row[4].upper() == upper], "exact")
        ranking.add(found, "prefix")
    elif await _may_be_hsa_local(session, raw):  # "7av52" or "HSLNACKA": an HSA-id's local part, on its index
        local = hsa_local(session.get_bind().dialect.name)
        rows = await session.execute(
            summary_select().where(local == raw.upper(), *_filter_clauses(filters)).limit(need)
        )
        ranking.add(rows.all(), "exact")
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


async def _may_be_hsa_local(session: AsyncSession, raw: str) -> bool:
    """One token that could be an HSA-id's local part. On SQLite not a word that units' names begin
    (those rank by name anyway; skipping the probe saves a statement on the common one-word search)."""
    if not HSA_LOCAL_LIKE.match(raw):
        return False
    if session.get_bind().dialect.name == "postgresql" or not raw.isalpha():
        return True
    return not (await Vocabulary.get(session)).known_prefix(fold(raw))


HSA_LOCAL = {  # the text of migration 0014's expression index, literally: bound values would not match it
    "sqlite": "upper(substr(units.hsa_id, instr(units.hsa_id, '-') + 1))",
    "postgresql": "upper(split_part(units.hsa_id, '-', 2))",
}


def hsa_local(dialect: str) -> Any:
    """The upper-cased part after the dash of `units.hsa_id`, as indexed by migration 0014."""
    return literal_column(HSA_LOCAL["postgresql" if dialect == "postgresql" else "sqlite"])


# --------------------------------------------------------------------------------------------- SQLite


FTS = table("unit_search", column("rowid"))


async def optimize_index(session: AsyncSession) -> None:
    """Merge the FTS5 segments after bulk writes (about 1 s per 100k units; queries get ~2x faster)."""
    if session.get_bind().dialect.name == "sqlite":
        await session.execute(text("INSERT INTO unit_search(unit_search) VALUES ('optimize')"))


def _fts_query(groups: Sequence[Sequence[Alternative]], vocabulary: Vocabulary | None = None) -> str:
    """An FTS5 query: every query word (a group of alternatives, query_words.py) matches.

    Prefix words of EXPAND_MIN letters or more become an OR of the indexed words they begin (taken from the
    cached vocabulary): FTS5 answers `"w"*` beyond its prefix indexes (2/3/4 letters) by merging the complete
    doclists of every matching word (about 1.2 ms for "hemtjanst"* at 100k units), while exact terms are
    read lazily and stop at the LIMIT (about 0.1 ms). Same matches, same (rowid) order.
    """
    parts = []
    for group in groups:
        options = [_fts_alternative(alternative, vocabulary) for alternative in group]
        parts.append(options[0] if len(options) == 1 else "(" + " OR ".join(options) + ")")
    return " AND ".join(parts)


def _fts_alternative(alternative: Alternative, vocabulary: Vocabulary | None) -> str:
    *leading, last = alternative.words
    if leading:  # several words: all of them (the index keeps no positions for phrases), the last a prefix
        tail = _quote(last) + ("*" if alternative.prefix else "")
        return "(" + " AND ".join([*(_quote(word) for word in leading), tail]) + ")"
    if not alternative.prefix:
        return _quote(last)
    terms = vocabulary.expand(last) if vocabulary is not None else None
    if not terms:
        return _quote(last) + "*"
    if len(terms) == 1:
        return _quote(terms[0])
    return "(" + " OR ".join(_quote(term) for term in terms) + ")"


def _quote(term: str) -> str:
    return '"' + term.replace('"', '""') + '"'


def _prefix_select(shape: FilterShape) -> Any:
    return (
        summary_select()
        .where(
            Unit.search_name >= bindparam("low"), Unit.search_name < bindparam("high"), *_bound_filter_clauses(shape)
        )
        .order_by(Unit.search_name, Unit.id)
        .limit(bindparam("limit"))
    )


@cache
def _prefix_statement(shape: FilterShape) -> Prepared:
    """The exact/prefix tier alone: folded names in [:low, :high), in (name, id) order, at most :limit."""
    return Prepared.of(_prefix_select(shape))


@cache
def _tiers_statement(shape: FilterShape) -> Prepared:
    """The exact/prefix tier and, only if it found fewer than :limit units, the FTS5 tier (:match) in one go.

    One statement instead of two saves a round trip to the driver thread, which under load is a wait for a
    CPU as well. The prefix tier is materialized once; `gate` counts its rows and CROSS JOIN keeps that
    count the outer loop, so when the prefix tier is full FTS5 never starts (a one-letter "a"* costs ~5 ms).
    The second CROSS JOIN keeps FTS5 outside `units`: with a filter (municipality=) and no statistics the
    planner otherwise walks the filter's index and probes FTS5 once per unit (up to ~1.3 s at 100k units).
    Rows carry their tier (0 prefix, 1 FTS); FTS rows stay in scan order, so a larger :fetch (a later page)
    only appends rows and offsets in cursors stay valid.
    """
    named = sqlite.dialect(paramstyle="named")
    filters = and_(*_bound_filter_clauses(shape)).compile(dialect=named)
    where = str(filters)
    columns = (
        "units.id, units.search_name, units.name, units.unit_type, units.hsa_id, units.municipality_code, "
        "units.town, organisations.id, organisations.name"
    )
    sql = f"""
        WITH prefix AS MATERIALIZED (
            SELECT {columns}, 0
            FROM units JOIN organisations ON organisations.id = units.organisation_id
            WHERE units.search_name >= :low AND units.search_name < :high AND {where}
            ORDER BY units.search_name, units.id
            LIMIT :limit
        )
        SELECT * FROM prefix
        UNION ALL
        SELECT * FROM (
            SELECT {columns}, 1
            FROM (SELECT count(*) AS n FROM prefix) AS gate
            CROSS JOIN unit_search
            CROSS JOIN units ON units.search_key = unit_search.rowid
            JOIN organisations ON organisations.id = units.organisation_id
            WHERE gate.n < :limit AND unit_search MATCH :match AND {where}
            LIMIT :fetch
        )
    """  # noqa: S608  # nosec B608  (only fixed fragments and bind parameters)
    statement = text(sql).bindparams(*filters.binds.values()).columns(*SUMMARY, column("tier", Integer))
    return Prepared.of(statement)


def _name_first(rows: list[Any], words: Sequence[str]) -> list[Any]:
    """Small FTS result sets (< SORT_CAP): units whose name has every word first, then by name."""

    def in_name(name: str) -> bool:
        name_words = name.split()
        return all(any(part.startswith(word) for part in name_words) for word in words)

    return sorted(rows, key=lambda row: (not in_name(row[1]), row[1], row[0]))


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


async def _ranked_sqlite(session: AsyncSession, folded: str, filters: Filters, ranking: Ranking) -> str | None:
    """Exact/prefix hits, then either `words` (every query word is a known word prefix) or `fuzzy` (the
    query with unknown words corrected against the vocabulary) from FTS5, only while the page is not full.

    FTS5 hits keep index (rowid) order, at most max(need, SORT_CAP) of them; sets of fewer than SORT_CAP
    are sorted with name matches first. The choice depends on the number of hits only, not on the page, so
    later pages (larger `need`) continue the same order and offsets in cursors stay valid. No bm25 ORDER
    BY: scoring every match of a broad prefix ("vard*" hits ~15% of units) costs hundreds of milliseconds
    at 100k units, while index order with a LIMIT stops early.
    """
    vocabulary = await Vocabulary.get(session)
    words, municipality = place_filter(query_words(folded), vocabulary.known_prefix)
    if municipality is not None:  # a place no unit's text names: a filter, never a word to correct
        if filters.municipality not in (None, municipality):
            return None
        filters = replace(filters, municipality=municipality)
        if not words:
            ranking.add([hit.row for hit in (await listing(session, filters, {}, ranking.need)).hits], "words")
            return None
    groups: list[Sequence[Alternative]] = []
    unknown: list[int] = []
    for index, word in enumerate(words):
        group = alternatives(word)
        if not any(all(vocabulary.known_prefix(part) for part in option.words) for option in group):
            inside = vocabulary.infix(word)  # the end or middle of a compound: "talje" in "sodertalje"
            if inside:
                group = tuple(Alternative((term,), prefix=False) for term in inside)
            else:
                unknown.append(index)
        groups.append(group)
    corrected: list[str] | None = None
    fts_match = "words"
    if unknown:  # the words tier cannot match: correct the unknown words against the vocabulary
        fts_match = "fuzzy"
        fixes = {index: fix for index in unknown if (fix := vocabulary.correct_word(words[index])) is not None}
        if len(fixes) < len(unknown):
            groups = []
        else:
            corrected = [fixes.get(index, word) for index, word in enumerate(words)]
            groups = [alternatives(fixes[i]) if i in fixes else group for i, group in enumerate(groups)]
    fts_words = corrected or words
    shape = _shape(filters)
    params = {"low": folded, "high": folded + "\uffff", "limit": ranking.need, **_filter_params(filters)}
    if not groups:
        prefix_rows, fts_rows = await _prefix_statement(shape).rows(session, params), []
    else:
        fetch = max(ranking.need, SORT_CAP)
        params.update(match=_fts_query(groups, vocabulary), fetch=fetch)
        rows = await _tiers_statement(shape).rows(session, params)
        prefix_rows = sorted((row[:9] for row in rows if row[9] == 0), key=lambda row: (row[1], row[0]))
        fts_rows = [row[:9] for row in rows if row[9] == 1]  # in FTS5 scan order, like a growing LIMIT
        if len(fts_rows) < SORT_CAP:  # all of them (fetch >= SORT_CAP), whatever the page: a stable order
            fts_rows = _name_first(fts_rows, fts_words)
    ranking.add([row for row in prefix_rows if row[1] == folded], "exact")
    ranking.add(prefix_rows, "prefix")
    if ranking.full:
        return None
    ranking.add(fts_rows[: ranking.need], fts_match)
    return " ".join(corrected) if corrected is not None else None


@dataclass
class Vocabulary:
    """FTS5 terms with document counts, cached per process for VOCAB_TTL seconds (or until invalidated)."""

    terms: list[str]  # letters-only terms: the typo-correction candidates
    docs: dict[str, int]
    loaded: float
    indexed: list[str] = field(default_factory=list)  # every term starting with a letter, sorted (expansion)
    by_initial: dict[str, list[str]] = field(default_factory=dict)
    joined: str = ""  # the letters-only terms joined by newlines, for infix search
    starts: list[int] = field(default_factory=list)  # where each of `terms` starts in `joined`

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
        indexed = sorted(str(term) for term, _doc in rows)
        vocabulary = cls(terms=sorted(docs), docs=docs, loaded=time.monotonic(), indexed=indexed)
        position = 0
        for term in vocabulary.terms:
            vocabulary.by_initial.setdefault(term[:1], []).append(term)
            vocabulary.starts.append(position)
            position += len(term) + 1
        vocabulary.joined = "\n".join(vocabulary.terms)
        cls._cache = vocabulary
        return vocabulary

    def expand(self, word: str) -> list[str] | None:
        """The indexed words that begin with `word`, or None where a plain prefix query is as cheap or safer.

        None for words shorter than EXPAND_MIN (FTS5 prefix indexes answer them), words not starting with a
        letter (not in this vocabulary), more than EXPAND_MAX words, or none at all (a word indexed after the
        vocabulary was loaded is then still found).
        """
        if len(word) < EXPAND_MIN or not ("a" <= word[0] <= "z"):
            return None
        index = bisect.bisect_left(self.indexed, word)
        found: list[str] = []
        for term in self.indexed[index : index + EXPAND_MAX + 1]:
            if not term.startswith(word):
                break
            found.append(term)
        return found if 0 < len(found) <= EXPAND_MAX else None

    def infix(self, word: str) -> list[str]:
        """Indexed words holding `word` inside: the end or middle of a compound ("talje" in "sodertalje"),
        the most frequent first, at most EXPAND_MAX; none for words shorter than INFIX_MIN letters.

        One scan of the joined vocabulary (str.find, about 0.1 ms per 100k terms) instead of a per-term test.
        """
        if len(word) < INFIX_MIN or not word.isalpha():
            return []
        found: dict[str, int] = {}
        position = self.joined.find(word)
        while position != -1:
            index = bisect.bisect_right(self.starts, position) - 1
            term = self.terms[index]
            found[term] = self.docs.get(term, 0)
            position = self.joined.find(word, self.starts[index] + len(term))
        return sorted(found, key=lambda term: (-found[term], term))[:EXPAND_MAX]

    def known_prefix(self, word: str) -> bool:
        """True if some indexed word starts with `word` (words with digits are never corrected: True)."""
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


# --------------------------------------------------------------------------------------------- PostgreSQL


async def _ranked_postgresql(session: AsyncSession, folded: str, filters: Filters, ranking: Ranking) -> None:
    params: dict[str, Any] = {"f": folded, "fp": folded + "%", "need": ranking.need, "min": FUZZY_SIMILARITY}
    word_clauses = []
    for index, word in enumerate(query_words(folded)):
        options = []
        for number, option in enumerate(alternatives(word)):
            key, phrase = f"w{index}_{number}", " ".join(option.words)
            if option.prefix:
                params[key] = f"% {phrase}%"
                options.append(f"(' ' || search_text) LIKE unaccent(:{key})")
            else:
                params[key] = f"% {phrase} %"
                options.append(f"(' ' || search_text || ' ') LIKE unaccent(:{key})")
        if len(word) >= INFIX_MIN and word.isalpha():  # inside a compound ("talje" in "sodertalje")
            params[f"i{index}"] = f"%{word}%"
            options.append(f"search_text LIKE unaccent(:i{index})")
        word_clauses.append("(" + " OR ".join(options) + ")")
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
