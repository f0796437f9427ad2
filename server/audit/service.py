"""Append audit events in the caller's transaction, so an action and its log row commit together."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field
from sqlalchemy.ext.asyncio import AsyncSession

from server.audit import store
from server.core import policy
from server.core.db import Database, utcnow
from server.core.errors import Forbidden
from server.core.models import AuditEvent
from server.core.principal import Principal
from server.core.sealed_columns import sealer_of


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


# ------------------------------------------------------------------------------------ auditor export


class AccessLogEntry(BaseModel):
    """One access-log line as auditors see it: who (name, HSA-id), which unit, when, what."""

    seq: int
    at: datetime
    actor_user_id: uuid.UUID | None
    actor_name: str | None
    actor_hsa_id: str | None
    unit_id: uuid.UUID | None
    unit_name: str | None
    action: str
    object_type: str
    object_id: str | None
    case_ref: str | None
    outcome: str = Field(description="allowed or denied")


@dataclass(frozen=True)
class AccessLogPage:
    items: list[AccessLogEntry]
    next_after_seq: int | None


async def export_access_log(
    db: Database,
    principal: Principal,
    *,
    case_ref: str | None,
    user_id: uuid.UUID | None,
    after_seq: int,
    limit: int,
    export_format: str,
    ip: str | None = None,
) -> AccessLogPage:
    """One page of the access log for a case reference or a user (who, unit, when).

    Only auditors may read it; every read, allowed or denied, is itself an audit row.
    """
    what = {"filter": "case_ref" if case_ref is not None else "user", "format": export_format}
    if not policy.allowed(principal, "audit.read"):
        async with db.transaction() as session:
            await record(
                session, actor=principal, action="audit.export", object_type="audit_log",
                object_id=user_id, case_ref=case_ref, outcome="denied", ip=ip, details=what,
            )  # fmt: skip
        raise Forbidden("Only auditors may read the access log.")
    async with db.transaction() as session:
        case_ref_hmac = sealer_of(db).blind_index(case_ref) if case_ref is not None else None
        rows = await store.access_log(
            session, case_ref_hmac=case_ref_hmac, user_id=user_id, after_seq=after_seq, limit=limit
        )
        items = [
            AccessLogEntry(
                seq=event.seq,
                at=event.at,
                actor_user_id=event.actor_user_id,
                actor_name=name,
                actor_hsa_id=hsa_id,
                unit_id=event.actor_unit_id,
                unit_name=unit_name,
                action=event.action,
                object_type=event.object_type,
                object_id=event.object_id,
                case_ref=event.case_ref,
                outcome=event.outcome,
            )
            for event, name, hsa_id, unit_name in rows
        ]
        await record(
            session, actor=principal, action="audit.export", object_type="audit_log", object_id=user_id,
            case_ref=case_ref, ip=ip, details={**what, "rows": len(items)},
        )  # fmt: skip
    return AccessLogPage(items=items, next_after_seq=items[-1].seq if len(items) == limit else None)
