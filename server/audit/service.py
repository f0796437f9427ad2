"""Append audit events in the caller's transaction, so an action and its log row commit together."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from server.core.db import utcnow
from server.core.models import AuditEvent
from server.identity.principal import Principal


async def record(
    session: AsyncSession,
    *,
    actor: Principal | None,
    action: str,
    object_type: str,
    object_id: str | uuid.UUID | None = None,
    unit_id: uuid.UUID | None = None,
    case_ref: str | None = None,
    outcome: str = "allowed",
    ip: str | None = None,
    details: dict[str, Any] | None = None,
) -> None:
    """Add one audit row. `details` must never contain message text or personal identity numbers."""
    session.add(
        AuditEvent(
            at=utcnow(),
            actor_user_id=actor.user_id if actor else None,
            actor_unit_id=unit_id,
            action=action,
            object_type=object_type,
            object_id=str(object_id) if object_id is not None else None,
            case_ref=case_ref,
            outcome=outcome,
            ip=ip,
            details=details or {},
        )
    )
