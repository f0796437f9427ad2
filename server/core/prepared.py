"""SQL compiled once for SQLite and run with one round trip to the aiosqlite thread.

Going through `AsyncConnection.execute` costs three or four round trips to the driver thread per
statement (cursor, execute, fetchall, close) plus result-object set-up. Each round trip waits for the
event loop to come around again, so under load a transaction of a few statements spends most of its
time queueing behind other work. These helpers keep the column types' own value conversions and run
inside the session's transaction (Core semantics: no ORM autoflush or identity map).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.dialects import sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession


async def driver_of(session: AsyncSession) -> Any:
    """The aiosqlite connection inside this session's transaction."""
    raw = await (await session.connection()).get_raw_connection()
    driver = raw.driver_connection
    if driver is None:
        raise RuntimeError("the session's connection is closed")
    return driver


@dataclass(frozen=True)
class Prepared:
    """A statement compiled once for SQLite: `rows` runs a select with one `execute_fetchall`, `run_many`
    an insert or update for many parameter sets with one `executemany`. Parameters and result columns
    are converted with the column types' own processors."""

    sql: str
    names: tuple[str, ...]
    defaults: dict[str, Any]
    binds: dict[str, Callable[[Any], Any] | None]
    results: tuple[Callable[[Any], Any] | None, ...]

    @classmethod
    def of(cls, statement: Any) -> Prepared:
        dialect = sqlite.dialect()
        compiled = statement.compile(dialect=dialect)
        names = tuple(compiled.positiontup or ())
        return cls(
            sql=str(compiled),
            names=names,
            defaults={name: compiled.binds[name].value for name in names if not compiled.binds[name].required},
            binds={name: compiled.binds[name].type.bind_processor(dialect) for name in names},
            results=tuple(
                col.type.result_processor(dialect, None) for col in getattr(statement, "selected_columns", ())
            ),
        )

    def values(self, params: dict[str, Any]) -> list[Any]:
        values = []
        for name in self.names:
            value = params[name] if name in params else self.defaults[name]  # KeyError: a missing parameter
            process_bind = self.binds[name]
            values.append(process_bind(value) if process_bind is not None and value is not None else value)
        return values

    async def rows(self, session: AsyncSession, params: dict[str, Any]) -> list[tuple[Any, ...]]:
        found = await (await driver_of(session)).execute_fetchall(self.sql, self.values(params))
        convert = self.results
        return [
            tuple(value if to is None or value is None else to(value) for to, value in zip(convert, row, strict=True))
            for row in found
        ]

    async def run_many(self, session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
        if not rows:
            return
        values = [self.values(row) for row in rows]
        try:
            await (await driver_of(session)).executemany(self.sql, values)
        except sqlite3.IntegrityError as exc:  # the same exception as through SQLAlchemy (callers retry on it)
            raise IntegrityError(self.sql, None, exc) from exc
