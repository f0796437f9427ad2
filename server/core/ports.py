"""Typed ports between domains: what one domain needs from another, without importing its internals.

A domain that offers a port implements the Protocol; the consumer receives the implementation when
its plugin builds its service, so there are no string look-ups and mypy checks both sides.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from server.core.principal import Principal


class CaseMessaging(Protocol):
    """Messaging as a discharge case uses it: one thread per case, structured notices acknowledged by units."""

    async def open_case_thread(
        self,
        session: AsyncSession,
        principal: Principal,
        *,
        subject: str,
        case_ref: str,
        from_unit_id: uuid.UUID,
        unit_ids: Iterable[uuid.UUID],
    ) -> uuid.UUID:
        """Create the case's conversation between the units in the caller's transaction; returns its id."""
        ...

    async def add_thread_units(
        self, session: AsyncSession, conversation_id: uuid.UUID, unit_ids: Iterable[uuid.UUID]
    ) -> None:
        """Add units to the conversation (a unit joining the case later)."""
        ...

    async def post_system_notice(
        self,
        session: AsyncSession,
        conversation_id: uuid.UUID,
        kind: str,
        data: dict[str, Any],
        *,
        sender: Principal | None = None,
        sender_unit_id: uuid.UUID | None = None,
        ack_unit_ids: Iterable[uuid.UUID] = (),
    ) -> uuid.UUID:
        """A structured message in the caller's transaction; `ack_unit_ids` must acknowledge it."""
        ...

    async def acknowledgements(
        self, session: AsyncSession, message_ids: Iterable[uuid.UUID]
    ) -> dict[uuid.UUID, dict[uuid.UUID, datetime | None]]:
        """message id -> {unit that must acknowledge -> when it did (None: not yet)}."""
        ...
