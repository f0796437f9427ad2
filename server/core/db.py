"""Database access: one async SQLAlchemy engine per app, SQLite tuned for durability.

SQLite runs in WAL mode with synchronous=FULL so that a commit acknowledged to a client survives a
power loss, not just a process crash (see docs/architecture.md). The server moves WAL pages into the
database file from a background task (`Database.background_checkpoints`), not inside the commit that
happens to cross SQLite's automatic checkpoint threshold.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import DateTime, MetaData, event, text
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.pool import ConnectionPoolEntry
from sqlalchemy.types import TypeDecorator

from server.core.background import running

log = logging.getLogger("brygga.db")

PING_AFTER_IDLE_SECONDS = 10.0  # PostgreSQL: pooled connections idle this long are pinged at checkout
WAL_RESTART_PAGES = 8_000  # ~32 MB: past this the background checkpointer makes the WAL start over

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def utcnow() -> datetime:
    return datetime.now(UTC)


def new_id() -> uuid.UUID:
    return uuid.uuid4()


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC timestamps on every backend (SQLite drops the offset otherwise)."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given; use timezone-aware UTC")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def is_sqlite(url: str) -> bool:
    return url.startswith("sqlite")


def _sqlite_pragmas(dbapi_connection: Any, _record: ConnectionPoolEntry, *, auto_checkpoint: bool) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=10000")
    if not auto_checkpoint:
        cursor.execute("PRAGMA wal_autocheckpoint=0")
    cursor.close()


def create_engine(url: str, *, echo: bool = False, auto_checkpoint: bool = True) -> AsyncEngine:
    """`auto_checkpoint=False` (SQLite): commits never checkpoint; whoever passes it must run
    `PRAGMA wal_checkpoint` itself, as `Database.background_checkpoints` does."""
    if is_sqlite(url):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(url, echo=echo, pool_size=8, max_overflow=8)
        event.listen(
            engine.sync_engine,
            "connect",
            lambda connection, record: _sqlite_pragmas(connection, record, auto_checkpoint=auto_checkpoint),
        )
        return engine
    engine = create_async_engine(url, echo=echo, pool_size=10, max_overflow=20)
    _ping_idle_connections(engine)
    return engine


def _ping_idle_connections(engine: AsyncEngine) -> None:
    """Ping a pooled connection at checkout only if it sat idle for `PING_AFTER_IDLE_SECONDS`.

    `pool_pre_ping` pings at every checkout: one more database round trip in every transaction,
    5 ms of the send→deliver p50 at 300 msg/s with two nodes (bench/messaging.py). A connection in
    steady use has just proven itself; one that idled may have been cut by a database restart,
    failover or firewall, and is then replaced before anyone gets an error.
    """

    @event.listens_for(engine.sync_engine, "checkin")
    def checked_in(_dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine.sync_engine, "checkout")
    def checked_out(dbapi_connection: Any, record: ConnectionPoolEntry, _proxy: Any) -> None:
        idle_since = record.info.pop("idle_since", None)
        if idle_since is None or time.monotonic() - idle_since < PING_AFTER_IDLE_SECONDS:
            return  # new, or in steady use
        try:
            engine.dialect.do_ping(dbapi_connection)
        except Exception as exc:
            raise DisconnectionError("pooled connection did not answer a ping; replacing it") from exc


class Database:
    """Owns the engine and hands out sessions; stores take a session, never the engine."""

    def __init__(self, url: str, *, background_checkpoints: bool = False) -> None:
        """`background_checkpoints`: the owner runs `background_checkpoints()` for as long as it writes
        (the server does); commits then never pay for a checkpoint."""
        self.url = url
        self.engine = create_engine(url, auto_checkpoint=not (background_checkpoints and is_sqlite(url)))
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False)

    @property
    def is_sqlite(self) -> bool:
        return is_sqlite(self.url)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """A session inside one transaction: committed on success, rolled back on error."""
        async with self.sessions() as session, session.begin():
            yield session

    async def ping(self) -> None:
        async with self.engine.connect() as connection:
            await connection.execute(text("SELECT 1"))

    @asynccontextmanager
    async def background_checkpoints(self, interval: float = 0.5) -> AsyncIterator[None]:
        """SQLite: copy committed WAL pages into the database file every `interval` seconds.

        A commit that crosses SQLite's automatic threshold (1,000 pages, every ~0.2 s at 300 messages
        per second) would otherwise do this work itself, and the senders in that batch would wait for
        it. A PASSIVE checkpoint runs beside writers and readers without blocking them."""
        if not self.is_sqlite:
            yield
            return
        async with running(self._checkpoint_forever(interval), name="sqlite-checkpoints"):
            yield

    async def _checkpoint_forever(self, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            try:
                async with self.engine.connect() as connection:
                    passive = (await connection.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)")).one()
                    _busy, wal_pages, copied = (int(value) for value in list(passive))
                    if wal_pages < WAL_RESTART_PAGES or copied < 0:  # small enough, or not in WAL mode (-1)
                        continue
                    # Under steady writes a passive pass never catches up, and the WAL only starts over
                    # once one did: finish the few pages left while holding writers back, briefly.
                    await connection.exec_driver_sql("PRAGMA wal_checkpoint(RESTART)")
            except Exception:
                log.exception("WAL checkpoint failed; retrying")

    async def close(self) -> None:
        await self.engine.dispose()
