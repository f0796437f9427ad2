"""`Prepared` statements run on the driver inside the session's transaction, on SQLite and PostgreSQL."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Integer, Uuid, bindparam, column, insert, select, table, text
from sqlalchemy.exc import IntegrityError

from server.core.db import Database, UTCDateTime
from server.core.prepared import Prepared

NOTES = table("notes", column("id", Integer()), column("author", Uuid()), column("at", UTCDateTime()))
NOTE_VALUES = {name: bindparam(name, type_=NOTES.c[name].type) for name in ("id", "author", "at")}
ADD_NOTE = Prepared.of(insert(NOTES).values(NOTE_VALUES))
ADD_NOTE_RETURNING = Prepared.of(insert(NOTES).values(NOTE_VALUES).returning(NOTES.c.id, NOTES.c.author))
NOTES_FROM = Prepared.of(
    select(NOTES.c.id, NOTES.c.author, NOTES.c.at)
    .where(NOTES.c.id >= bindparam("low", type_=Integer()))
    .order_by(NOTES.c.id)
)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "postgresql":
        return str(request.getfixturevalue("pg_database"))
    return f"sqlite+aiosqlite:///{tmp_path / 'p.db'}"


@pytest.fixture
async def database(database_url: str) -> AsyncIterator[Database]:
    database = Database(database_url)
    uuid_sql = "CHAR(32)" if database.is_sqlite else "UUID"
    at_sql = "DATETIME" if database.is_sqlite else "TIMESTAMP WITH TIME ZONE"
    async with database.transaction() as session:
        await session.execute(text(f"CREATE TABLE notes (id INTEGER PRIMARY KEY, author {uuid_sql}, at {at_sql})"))
    try:
        yield database
    finally:
        await database.close()


async def test_rows_written_on_the_driver_read_back_like_the_orm_writes_them(database: Database) -> None:
    author, at = uuid.uuid4(), datetime(2026, 11, 28, 9, 30, tzinfo=UTC)
    async with database.transaction() as session:
        await ADD_NOTE.run_many(session, [{"id": 1, "author": author, "at": at}, {"id": 2, "author": author, "at": at}])
    async with database.transaction() as session:
        assert await NOTES_FROM.rows(session, {"low": 2}) == [(2, author, at)]
        through_sqlalchemy = (await session.execute(select(NOTES.c.author, NOTES.c.at).where(NOTES.c.id == 1))).one()
    assert tuple(through_sqlalchemy) == (author, at)


async def test_a_rolled_back_transaction_takes_the_driver_writes_with_it(database: Database) -> None:
    with pytest.raises(RuntimeError):
        async with database.transaction() as session:
            # The first statement of the transaction: on PostgreSQL BEGIN must have been sent before it.
            await ADD_NOTE.run_many(session, [{"id": 1, "author": uuid.uuid4(), "at": datetime.now(UTC)}])
            raise RuntimeError("the caller failed after the write")
    async with database.transaction() as session:
        assert await NOTES_FROM.rows(session, {"low": 0}) == []


async def test_a_duplicate_key_raises_sqlalchemys_integrity_error(database: Database) -> None:
    row = {"id": 1, "author": uuid.uuid4(), "at": datetime.now(UTC)}
    async with database.transaction() as session:
        await ADD_NOTE.run_many(session, [row])
    with pytest.raises(IntegrityError):
        async with database.transaction() as session:
            await ADD_NOTE.run_many(session, [row])


@pytest.mark.postgres
async def test_rows_many_returns_each_inserted_row_in_the_order_given(pg_database: str) -> None:
    database = Database(pg_database)
    try:
        async with database.transaction() as session:
            await session.execute(text("CREATE TABLE notes (id INTEGER PRIMARY KEY, author UUID, at TIMESTAMPTZ)"))
        authors = [uuid.uuid4() for _ in range(5)]
        rows = [{"id": 10 - n, "author": a, "at": datetime.now(UTC)} for n, a in enumerate(authors)]
        async with database.transaction() as session:
            returned = await ADD_NOTE_RETURNING.rows_many(session, rows)
        assert returned == [(10 - n, a) for n, a in enumerate(authors)]
    finally:
        await database.close()
