"""Database leases: at most one node at a time owns a named singleton job (audit chainer, deadline
timers, a video room), and another node takes over when the owner stops renewing.

Each operation is a single atomic SQL statement (INSERT ... ON CONFLICT DO UPDATE ... WHERE ...
RETURNING on PostgreSQL and SQLite >= 3.35, or a conditional UPDATE/DELETE), so two nodes racing for
the same lease can never both win. Expiry uses the nodes' UTC clocks: keep them NTP-synchronised and
the TTL far above the possible skew (default 15 s). A holder must renew well before expiry
(`LeaseKeeper` renews every TTL/3) and must stop the guarded work as soon as a renewal fails.

    from server.core import leases
    if await leases.acquire(db, "deadlines", owner=ctx.node_id, ttl=15):
        ...                                   # we own it until now + 15 s unless renewed
    await leases.renew(db, name, owner, ttl)  # True while still ours
    await leases.release(db, name, owner)     # hand over at once (shutdown)

    keeper = leases.LeaseKeeper(db, "video-room:<id>", ctx.node_id, ttl=15)
    async with keeper.kept():                 # keeper.held tells whether this node owns it now
        ...
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import case, delete, literal, select, update
from sqlalchemy.dialects import postgresql, sqlite

from server.core.db import Database, UTCDateTime, log_failure, utcnow
from server.core.models import Lease

log = logging.getLogger("brygga.leases")


@dataclass(frozen=True)
class LeaseInfo:
    name: str
    owner: str
    expires_at: datetime
    acquired_at: datetime


async def acquire(db: Database, name: str, owner: str, ttl: float, *, now: datetime | None = None) -> bool:
    """Take the lease if it is free, expired or already ours (then it is renewed). True = we hold it."""
    now = now or utcnow()
    values: dict[str, Any] = {
        "name": name,
        "owner": owner,
        "expires_at": now + timedelta(seconds=ttl),
        "acquired_at": now,
        "renewed_at": now,
    }
    insert = (postgresql.insert if not db.is_sqlite else sqlite.insert)(Lease).values(**values)
    table = Lease.__table__.c
    statement = insert.on_conflict_do_update(
        index_elements=[table.name],
        set_={
            "owner": insert.excluded.owner,
            "expires_at": insert.excluded.expires_at,
            "renewed_at": insert.excluded.renewed_at,
            # keep the original acquisition time when we merely renew our own lease
            "acquired_at": case(
                (table.owner == insert.excluded.owner, table.acquired_at), else_=literal(now, UTCDateTime())
            ),
        },
        where=(table.owner == insert.excluded.owner) | (table.expires_at <= insert.excluded.renewed_at),
    ).returning(table.owner)
    async with db.transaction() as session:
        won = (await session.execute(statement)).scalar_one_or_none()
    return bool(won == owner)


async def renew(db: Database, name: str, owner: str, ttl: float, *, now: datetime | None = None) -> bool:
    """Extend our lease; False if it is not ours any more (another node took it after expiry)."""
    now = now or utcnow()
    async with db.transaction() as session:
        result = await session.execute(
            update(Lease)
            .where(Lease.name == name, Lease.owner == owner)
            .values(expires_at=now + timedelta(seconds=ttl), renewed_at=now)
        )
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def release(db: Database, name: str, owner: str) -> bool:
    """Give the lease up at once so another node need not wait for the TTL."""
    async with db.transaction() as session:
        result = await session.execute(delete(Lease).where(Lease.name == name, Lease.owner == owner))
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def holder(db: Database, name: str, *, now: datetime | None = None) -> LeaseInfo | None:
    """Who holds the lease now (None if nobody or expired)."""
    now = now or utcnow()
    async with db.transaction() as session:
        lease = (await session.execute(select(Lease).where(Lease.name == name))).scalar_one_or_none()
    if lease is None or lease.expires_at <= now:
        return None
    return LeaseInfo(lease.name, lease.owner, lease.expires_at, lease.acquired_at)


class LeaseKeeper:
    """Keeps trying to hold one lease; `held` is True only while a renewal has succeeded within the TTL.

    `on_change(held)` is awaited whenever ownership changes, e.g. to start or stop the guarded work.
    """

    def __init__(
        self,
        db: Database,
        name: str,
        owner: str,
        *,
        ttl: float = 15.0,
        interval: float | None = None,
        on_change: Callable[[bool], Awaitable[None]] | None = None,
    ) -> None:
        self.db = db
        self.name = name
        self.owner = owner
        self.ttl = ttl
        self.interval = interval if interval is not None else ttl / 3
        self.on_change = on_change
        self.held = False
        self._stop = asyncio.Event()

    async def _set(self, held: bool) -> None:
        if held != self.held:
            self.held = held
            log.info("lease %s", "acquired" if held else "lost", extra={"lease": self.name, "owner": self.owner})
            if self.on_change is not None:
                await self.on_change(held)

    def stop(self) -> None:
        """Ask `run` to finish its current statement, release the lease and return."""
        self._stop.set()

    async def run(self) -> None:
        try:
            while not self._stop.is_set():
                try:
                    held = await acquire(self.db, self.name, self.owner, self.ttl)
                except Exception as exc:
                    log_failure(log, "lease renewal failed", exc, lease=self.name)
                    held = False  # cannot prove ownership: stop the guarded work
                await self._set(held)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), timeout=self.interval)
        finally:
            self.held = False
            with contextlib.suppress(Exception):
                await release(self.db, self.name, self.owner)

    @contextlib.asynccontextmanager
    async def kept(self) -> AsyncIterator[None]:
        """Keep the lease while inside the block; on the way out stop without cancelling `run`.

        A cancel in the middle of a statement leaves SQLite's write lock with the unfinished statement
        until garbage collection, so the release (and every other writer) would wait out the busy
        timeout: a node stopped right after starting then held its leases for the whole TTL.
        """
        task = asyncio.get_running_loop().create_task(self.run(), name=f"lease:{self.name}")
        try:
            yield
        finally:
            self.stop()
            await task  # cancelled with us only if our own caller cancels again while we wait
