"""SQLite durability settings, the server's background WAL checkpoints, and pooled PostgreSQL connections."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from server.core import db as db_module
from server.core.db import Database


async def write_rows(database: Database, count: int) -> None:
    """`count` rows of 3,000 bytes, one transaction each."""
    async with database.transaction() as session:
        await session.execute(text("CREATE TABLE IF NOT EXISTS notes (id INTEGER PRIMARY KEY, body BLOB)"))
    for _ in range(count):
        async with database.transaction() as session:
            await session.execute(text("INSERT INTO notes (body) VALUES (randomblob(3000))"))


async def test_server_connections_are_durable_and_leave_checkpoints_to_the_background(tmp_path: Path) -> None:
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'b.db'}", background_checkpoints=True)
    try:
        async with database.transaction() as session:
            pragmas = {
                name: (await session.execute(text(f"PRAGMA {name}"))).scalar_one()
                for name in ("journal_mode", "synchronous", "wal_autocheckpoint")
            }
        assert pragmas == {"journal_mode": "wal", "synchronous": 2, "wal_autocheckpoint": 0}  # 2 = FULL
    finally:
        await database.close()
    # Command-line tools keep SQLite's own checkpoints: nothing runs in the background for them.
    plain = Database(f"sqlite+aiosqlite:///{tmp_path / 'c.db'}")
    try:
        async with plain.transaction() as session:
            assert (await session.execute(text("PRAGMA wal_autocheckpoint"))).scalar_one() == 1000
    finally:
        await plain.close()


async def test_background_checkpoints_copy_the_wal_and_keep_it_small_under_steady_writes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(db_module, "WAL_RESTART_PAGES", 50)  # ~200 KB instead of ~32 MB
    path = tmp_path / "b.db"
    wal = tmp_path / "b.db-wal"
    database = Database(f"sqlite+aiosqlite:///{path}", background_checkpoints=True)
    try:
        await write_rows(database, 100)
        assert path.stat().st_size < 100 * 3000, "a commit checkpointed by itself"
        async with database.background_checkpoints(interval=0.05):
            await wait_for(lambda: path.stat().st_size >= 100 * 3000, "the WAL was never copied into the database")
            # Two writers without pause: a passive checkpoint alone never catches up, and without the
            # restart the WAL would hold every one of these commits (about 12 MB here).
            await asyncio.gather(write_rows(database, 500), write_rows(database, 500))
        assert wal.stat().st_size < 4_000_000
        async with database.transaction() as session:
            assert (await session.execute(text("SELECT count(*) FROM notes"))).scalar_one() == 1100
    finally:
        await database.close()


async def wait_for(condition: Callable[[], bool], failure: str, seconds: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + seconds
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, failure
        await asyncio.sleep(0.05)


async def backend_pid(database: Database) -> int:
    async with database.transaction() as session:
        return int((await session.execute(text("SELECT pg_backend_pid()"))).scalar_one())


async def terminate(database: Database, pid: int) -> None:
    async with Database(database.url).transaction() as session:  # another pool: the admin's connection
        # With a timeout it returns once the backend has gone (PostgreSQL 14+).
        await session.execute(text("SELECT pg_terminate_backend(:pid, 5000)"), {"pid": pid})


@pytest.mark.postgres
async def test_a_pooled_connection_cut_while_idle_is_replaced_unnoticed(
    pg_database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    database = Database(pg_database)
    try:
        # In steady use (idle less than the threshold) there is no ping: a cut connection surfaces.
        monkeypatch.setattr(db_module, "PING_AFTER_IDLE_SECONDS", 3600.0)
        first = await backend_pid(database)
        await terminate(database, first)
        with pytest.raises(DBAPIError):
            await backend_pid(database)

        # Idle past the threshold: the checkout pings, finds it dead and hands out a new connection.
        monkeypatch.setattr(db_module, "PING_AFTER_IDLE_SECONDS", 0.0)
        second = await backend_pid(database)
        await terminate(database, second)
        third = await backend_pid(database)
        assert third not in (first, second)
    finally:
        await database.close()
