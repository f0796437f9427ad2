"""SQL compiled once per dialect and run on the driver with one round trip per call.

Going through `AsyncConnection.execute` costs, per statement, SQLAlchemy's result set-up and on
SQLite three or four round trips to the aiosqlite thread (cursor, execute, fetchall, close); on
PostgreSQL the asyncpg adapter's mutex, cache check and status parsing. Each await waits for the
event loop to come around again, so under load a transaction of a few statements spends most of its
time queueing behind other work, and on PostgreSQL the feed lock is held all that time. These
helpers keep the column types' own value conversions and run inside the session's transaction
(Core semantics: no ORM autoflush or identity map).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

import asyncpg
from sqlalchemy.dialects import sqlite
from sqlalchemy.dialects.postgresql import asyncpg as postgresql_asyncpg
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

T = TypeVar("T")

DIALECTS: dict[str, Callable[[], Dialect]] = {
    "sqlite": sqlite.dialect,
    "postgresql": postgresql_asyncpg.dialect,
}


@contextmanager
def _integrity_errors(sql: str) -> Iterator[None]:
    """The same exception as through SQLAlchemy: callers retry on IntegrityError."""
    try:
        yield
    except (sqlite3.IntegrityError, asyncpg.IntegrityConstraintViolationError) as exc:
        raise IntegrityError(sql, None, exc) from exc


async def driver_of(session: AsyncSession) -> tuple[str, Any]:
    """(dialect name, the aiosqlite or asyncpg connection) inside this session's transaction."""
    connection = await session.connection()
    raw = await connection.get_raw_connection()
    driver = raw.driver_connection
    if driver is None:
        raise RuntimeError("the session's connection is closed")
    name = connection.dialect.name
    if name == "postgresql":
        # SQLAlchemy's asyncpg adapter sends BEGIN lazily, before its own first statement; a statement
        # sent straight to asyncpg before that would run outside the transaction.
        adapted = raw.dbapi_connection
        if getattr(adapted, "_transaction", None) is None:
            await adapted._start_transaction()  # type: ignore[union-attr]
    return name, driver


@dataclass(frozen=True)
class Compiled:
    """One statement's SQL for one dialect, its positional parameter names and value conversions."""

    sql: str
    names: tuple[str, ...]
    defaults: dict[str, Any]
    binds: dict[str, Callable[[Any], Any] | None]
    results: tuple[Callable[[Any], Any] | None, ...]

    @classmethod
    def of(cls, statement: Any, dialect: Dialect) -> Compiled:
        compiled = statement.compile(dialect=dialect)
        names = tuple(compiled.positiontup or ())
        return cls(
            sql=str(compiled),
            names=names,
            defaults={name: compiled.binds[name].value for name in names if not compiled.binds[name].required},
            binds={name: compiled.binds[name].type.dialect_impl(dialect).bind_processor(dialect) for name in names},
            results=tuple(
                col.type.dialect_impl(dialect).result_processor(dialect, None)
                for col in statement.exported_columns  # the selected or RETURNING columns
            ),
        )

    def values(self, params: dict[str, Any]) -> list[Any]:
        values = []
        for name in self.names:
            value = params[name] if name in params else self.defaults[name]  # KeyError: a missing parameter
            process_bind = self.binds[name]
            values.append(process_bind(value) if process_bind is not None and value is not None else value)
        return values

    def converted(self, row: Sequence[Any]) -> tuple[Any, ...]:
        return tuple(
            value if to is None or value is None else to(value) for to, value in zip(self.results, row, strict=True)
        )


@dataclass(frozen=True)
class Prepared:
    """A Core statement compiled once per dialect (SQLite or PostgreSQL): `rows` runs a select,
    `run_many` an insert or update for many parameter sets, `rows_many` an insert … RETURNING for
    many parameter sets (PostgreSQL only), each with one call to the driver."""

    statement: Any
    _compiled: dict[str, Compiled] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def of(cls, statement: Any) -> Prepared:
        return cls(statement)

    def compiled(self, dialect_name: str) -> Compiled:
        found = self._compiled.get(dialect_name)
        if found is None:
            found = self._compiled[dialect_name] = Compiled.of(self.statement, DIALECTS[dialect_name]())
        return found

    async def rows(self, session: AsyncSession, params: dict[str, Any]) -> list[tuple[Any, ...]]:
        name, driver = await driver_of(session)
        compiled = self.compiled(name)
        values = compiled.values(params)
        if name == "sqlite":
            found = await driver.execute_fetchall(compiled.sql, values)
        else:
            found = await driver.fetch(compiled.sql, *values)
        return [compiled.converted(row) for row in found]

    async def run_many(self, session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
        if not rows:
            return
        name, driver = await driver_of(session)
        compiled = self.compiled(name)
        with _integrity_errors(compiled.sql):
            await driver.executemany(compiled.sql, [compiled.values(row) for row in rows])

    async def rows_many(self, session: AsyncSession, rows: Sequence[dict[str, Any]]) -> list[tuple[Any, ...]]:
        """PostgreSQL: the RETURNING row of each parameter set, in the order given."""
        if not rows:
            return []
        name, driver = await driver_of(session)
        if name != "postgresql":
            raise NotImplementedError("rows_many needs asyncpg (SQLite's executemany returns no rows)")
        compiled = self.compiled(name)
        with _integrity_errors(compiled.sql):
            found = await driver.fetchmany(compiled.sql, [compiled.values(row) for row in rows])
        return [compiled.converted(row) for row in found]


Write = tuple[Prepared, Sequence[dict[str, Any]]]  # one statement and its parameter sets


class SqliteCalls:
    """Prepared statements on the session's sqlite3 connection, from inside aiosqlite's worker thread."""

    def __init__(self, connection: sqlite3.Connection) -> None:
        self.connection = connection

    def rows(self, prepared: Prepared, params: dict[str, Any]) -> list[tuple[Any, ...]]:
        compiled = prepared.compiled("sqlite")
        found = self.connection.execute(compiled.sql, compiled.values(params)).fetchall()
        return [compiled.converted(row) for row in found]

    def run_many(self, prepared: Prepared, rows: Sequence[dict[str, Any]]) -> None:
        if not rows:
            return
        compiled = prepared.compiled("sqlite")
        with _integrity_errors(compiled.sql):
            self.connection.executemany(compiled.sql, [compiled.values(row) for row in rows])


async def in_one_trip(session: AsyncSession, work: Callable[[SqliteCalls], T]) -> T:
    """SQLite: run `work` on the session's connection (inside its transaction) in one trip to
    aiosqlite's worker thread, however many statements it runs.

    Each awaited statement is a trip: a thread wake-up there and an event-loop turn back here, 0.1 –
    0.3 ms on a 2-core VM, which added up to most of a sequential send's latency. `work` runs off the
    event loop: it may only use the database and objects that no other task touches meanwhile.
    aiosqlite offers no public call for this; `_execute` is what each of its own methods uses.
    """
    name, driver = await driver_of(session)
    if name != "sqlite":
        raise NotImplementedError("in_one_trip runs on aiosqlite's thread; PostgreSQL runs the statements itself")
    result: T = await driver._execute(lambda: work(SqliteCalls(driver._conn)))
    return result
