"""Database access: one async SQLAlchemy engine per app, SQLite tuned for durability.

SQLite runs in WAL mode with synchronous=FULL so that a commit acknowledged to a client survives a
power loss, not just a process crash (see docs/architecture.md). The server moves WAL pages into the
database file from a background task (`Database.background_checkpoints`), not inside the commit that
happens to cross SQLite's automatic checkpoint threshold, and restarts the WAL once it passes
`WAL_RESTART_PAGES`; `journal_size_limit` caps what is left on disk after a reset, so the WAL stays
near 16 MB plus what is written during one checkpoint pass (docs/operations.md: headroom).

Storage full (SQLite `SQLITE_FULL`, PostgreSQL `53100 disk_full`, `ENOSPC`): a transaction raises
`StorageFull` (problem `storage_full`, 507) instead of an internal error, the database logs the state
change once, `/readyz` reports not ready until a probe write succeeds, and background loops do not
log a traceback per failed pass (`log_failure`).
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import shutil
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
from server.core.errors import Problem

log = logging.getLogger("brygga.db")

PING_AFTER_IDLE_SECONDS = 10.0  # PostgreSQL: pooled connections idle this long are pinged at checkout
WAL_RESTART_PAGES = 4_000  # ~16 MB: past this the background checkpointer restarts the WAL
WAL_SIZE_LIMIT_BYTES = 16 * 1024 * 1024  # what a reset WAL may keep on disk (PRAGMA journal_size_limit)
STORAGE_PROBE_SECONDS = 2.0  # while storage is full, how often a probe write checks whether it is back
STORAGE_HEADROOM_BYTES = 4 * 1024 * 1024  # SQLite: less free space than this beside the database is "full"

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
    cursor.execute(f"PRAGMA journal_size_limit={WAL_SIZE_LIMIT_BYTES}")
    if not auto_checkpoint:
        cursor.execute("PRAGMA wal_autocheckpoint=0")
    cursor.close()


def private_database_file(path: Path) -> None:
    """The SQLite file, its WAL and shared-memory file readable by the server's user only (0600).

    SQLite creates `-wal` and `-shm` with the permissions of the database file, so creating that file
    0600 before SQLite does is enough for new databases; existing ones are tightened here too."""
    path.parent.mkdir(parents=True, exist_ok=True)
    os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
    for file in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        if file.exists():
            file.chmod(0o600)


def create_engine(url: str, *, echo: bool = False, auto_checkpoint: bool = True) -> AsyncEngine:
    """`auto_checkpoint=False` (SQLite): commits never checkpoint; whoever passes it must run
    `PRAGMA wal_checkpoint` itself, as `Database.background_checkpoints` does."""
    if is_sqlite(url):
        path = url.split("///", 1)[-1].split("?", 1)[0]
        if path and path != ":memory:":
            private_database_file(Path(path))
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


class StorageFull(Problem):
    status = 507

    def __init__(self) -> None:
        super().__init__(
            "storage_full",
            "The server is out of storage: nothing can be saved, and reading is refused because every read "
            "must be written to the access log. Try again later; unsent messages stay in your outbox.",
        )


def is_storage_full(exc: BaseException) -> bool:
    """SQLite's SQLITE_FULL, PostgreSQL's disk_full (53100) or ENOSPC, anywhere in the exception's chain."""
    seen: BaseException | None = exc
    while seen is not None:
        for error in (seen, getattr(seen, "orig", None)):
            if error is None:
                continue
            if isinstance(error, StorageFull) or getattr(error, "sqlstate", None) == "53100":
                return True
            if getattr(error, "sqlite_errorcode", None) == 13 or "database or disk is full" in str(error):
                return True
            if isinstance(error, OSError) and error.errno == errno.ENOSPC:
                return True
        seen = seen.__cause__ or seen.__context__
    return False


def log_failure(logger: logging.Logger, message: str, exc: BaseException, **extra: Any) -> None:
    """Log a failed background pass with its traceback, unless storage is full: that state change is
    logged once by the `Database`, not once per pass (a full disk must not fill up with log lines)."""
    if not is_storage_full(exc):
        logger.error(message, exc_info=exc, extra=extra)


class Database:
    """Owns the engine and hands out sessions; stores take a session, never the engine."""

    def __init__(self, url: str, *, background_checkpoints: bool = False) -> None:
        """`background_checkpoints`: the owner runs `background_checkpoints()` for as long as it writes
        (the server does); commits then never pay for a checkpoint."""
        self.url = url
        self.engine = create_engine(url, auto_checkpoint=not (background_checkpoints and is_sqlite(url)))
        # Sessions know their database: sealed columns (server/core/sealed_columns.py) use its sealer.
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False, info={"database": self})
        # A server.core.envelope.Sealer once the key files are open (app_keys.envelope_for); typed there, since
        # the envelope module sits above this one.
        self.sealer: Any = None
        self.storage_full = False  # set when a write failed for lack of space, cleared by a probe write
        database = self.engine.url.database if is_sqlite(url) else None
        self.sqlite_file = Path(database).resolve() if database and database != ":memory:" else None

    @property
    def is_sqlite(self) -> bool:
        return is_sqlite(self.url)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """A session inside one transaction: committed on success, rolled back on error."""
        try:
            async with self.sessions() as session, session.begin():
                yield session
        except Problem:
            raise
        except Exception as exc:
            if not is_storage_full(exc):
                raise
            self._storage_state(full=True)
            raise StorageFull() from exc

    def _storage_state(self, *, full: bool) -> None:
        if full == self.storage_full:
            return
        self.storage_full = full
        if full:
            log.error("storage full: writes fail and reads that must be logged are refused; not ready")
        else:
            log.warning("storage available again: writes succeed; ready")

    async def probe_storage(self) -> bool:
        """True if storage takes writes. SQLite: at least `STORAGE_HEADROOM_BYTES` free beside the database
        file (a full disk can still take a small write into WAL space it already has). Once a write
        failed for lack of space: one real write too (a row inserted and deleted in the leases table)."""
        if self.sqlite_file is not None and shutil.disk_usage(self.sqlite_file.parent).free < STORAGE_HEADROOM_BYTES:
            self._storage_state(full=True)
            return False
        if not self.storage_full:
            return True
        now = utcnow()
        try:
            async with self.transaction() as session:
                await session.execute(
                    text("INSERT INTO leases (name, owner, expires_at, acquired_at, renewed_at) VALUES "
                         "(:name, 'probe', :now, :now, :now)"),
                    {"name": f"storage-probe:{uuid.uuid4()}", "now": now.replace(tzinfo=None)},
                )  # fmt: skip
                await session.execute(text("DELETE FROM leases WHERE name LIKE 'storage-probe:%'"))
        except StorageFull:
            return False
        self._storage_state(full=False)
        return True

    @asynccontextmanager
    async def watch_storage(self) -> AsyncIterator[None]:
        """While storage is full, probe every `STORAGE_PROBE_SECONDS` so recovery is noticed (and logged)
        even when nothing else writes."""

        async def watch() -> None:
            while True:
                await asyncio.sleep(STORAGE_PROBE_SECONDS)
                if self.storage_full or self.sqlite_file is not None:
                    try:
                        await self.probe_storage()
                    except Exception as exc:
                        log_failure(log, "storage probe failed", exc)

        async with running(watch(), name="storage-watch"):
            yield

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
                    # once one did: finish the few pages left while holding writers back, briefly. RESTART,
                    # not TRUNCATE: writers then overwrite the file in place, while a truncated WAL grows
                    # again and every commit's fsync also flushes the new size (bench/messaging.py: p99 at
                    # 300 msg/s 14-16 ms against 19-36 ms). journal_size_limit still bounds the file.
                    await connection.exec_driver_sql("PRAGMA wal_checkpoint(RESTART)")
            except Exception as exc:
                log_failure(log, "WAL checkpoint failed; retrying", exc)

    async def close(self) -> None:
        await self.engine.dispose()
