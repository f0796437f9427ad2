"""SQL for the auditor's access-log export."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from server.core.models import AuditEvent, Unit, User


async def access_log(
    session: AsyncSession,
    *,
    case_ref_hmac: str | None,
    user_id: uuid.UUID | None,
    after_seq: int,
    limit: int,
) -> list[tuple[AuditEvent, str | None, str | None, str | None]]:
    """Audit rows for one case reference (its blind index) or one acting user, oldest first, with names joined in."""
    query = (
        select(AuditEvent, User.display_name, User.hsa_id, Unit.name)
        .outerjoin(User, User.id == AuditEvent.actor_user_id)
        .outerjoin(Unit, Unit.id == AuditEvent.actor_unit_id)
        .where(AuditEvent.seq > after_seq)
        .order_by(AuditEvent.seq)
        .limit(limit)
    )
    if case_ref_hmac is not None:
        query = query.where(AuditEvent.case_ref_hmac == case_ref_hmac)
    if user_id is not None:
        query = query.where(AuditEvent.actor_user_id == user_id)
    return [(row[0], row[1], row[2], row[3]) for row in (await session.execute(query)).all()]
