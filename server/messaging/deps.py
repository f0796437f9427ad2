"""What every part of the messaging service shares: the database, the key envelope, the settings,
the injected clock and calendar, the notifier, and this node's writer queue (SQLite)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession

from server.core.background import detached
from server.core.calendar import UnitCalendar
from server.core.db import Database
from server.core.envelope import Envelope
from server.messaging.config import MessagingConfig
from server.messaging.notifier import Notifier


@dataclass
class Deps:
    db: Database
    envelope: Envelope
    config: MessagingConfig
    clock: Callable[[], datetime]
    calendar: Callable[[], UnitCalendar]
    notifier: Notifier
    write_gate: asyncio.Lock = field(default_factory=asyncio.Lock)

    @contextlib.asynccontextmanager
    async def write_transaction(self) -> AsyncIterator[AsyncSession]:
        """A transaction that writes. On SQLite (one writer at a time) this node's writers queue here
        instead of busy-waiting inside SQLite while holding pooled connections."""
        if not self.db.is_sqlite:
            async with self.db.transaction() as session:
                yield session
            return
        async with self.write_gate, self.db.transaction() as session:
            yield session


def after_commit(session: AsyncSession, action: Callable[[], Coroutine[Any, Any, None]]) -> None:
    """Run `action` (a task on the running loop) once `session`'s transaction has committed."""

    def fire(_session: object) -> None:
        detached(action())

    event.listen(session.sync_session, "after_commit", fire, once=True)
