"""Optimistic concurrency (ETag/If-Match), version history rows and their audit events.

Every change bumps the object's `version` with a compare-and-set UPDATE (so two concurrent edits with the
same expected version cannot both win), appends a `DirectoryVersion` (snapshot + diff) and an audit row in
the same transaction.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from server.audit.service import record
from server.core.errors import NotFound, Problem
from server.core.principal import Principal
from server.directory import store
from server.directory.models import DirectoryVersion


class PreconditionFailed(Problem):
    status = 412

    def __init__(self, current: int) -> None:
        super().__init__(
            "precondition_failed",
            "Someone else changed this since you loaded it. Reload, re-apply your change and save again.",
            headers={"ETag": etag(current)},
        )


def etag(version: int) -> str:
    return f'W/"{version}"'


def parse_if_match(header: str | None) -> int | None:
    """`W/"3"`, `"3"` or `3` → 3; None when the header is missing; -1 when it is unparseable (never matches)."""
    if header is None or not header.strip():
        return None
    value = header.strip()
    if value.startswith("W/"):
        value = value[2:]
    value = value.strip('"')
    return int(value) if value.isdigit() else -1


def version_row(
    actor: Principal | None,
    resource_type: str,
    object_id: uuid.UUID,
    version: int,
    operation: str,
    before: dict[str, Any],
    after: dict[str, Any],
    at: datetime,
) -> dict[str, Any]:
    """Column values of one DirectoryVersion row."""
    return {
        "resource_type": resource_type,
        "resource_id": object_id,
        "version": version,
        "operation": operation,
        "at": at,
        "actor_user_id": actor.user_id if actor else None,
        "snapshot": after,
        "diff": diff(before, after),
    }


def diff(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    return {
        key: [before.get(key), after.get(key)]
        for key in sorted(set(before) | set(after))
        if before.get(key) != after.get(key)
    }


async def record_version(
    session: AsyncSession,
    actor: Principal | None,
    resource_type: str,
    obj: Any,
    operation: str,
    before: dict[str, Any],
    after: dict[str, Any],
    *,
    at: datetime,
    unit_id: uuid.UUID | None = None,
    audit: bool = True,
) -> None:
    row = version_row(actor, resource_type, obj.id, obj.version, operation, before, after, at)
    changes = row["diff"]
    session.add(DirectoryVersion(**row))
    if audit:
        await record(
            session,
            actor=actor,
            action=f"directory.{resource_type}.{operation}",
            object_type=resource_type,
            object_id=obj.id,
            unit_id=unit_id,
            details={"version": obj.version, "diff": changes},
        )


async def locked(
    session: AsyncSession, model: type[store.Versioned], object_id: uuid.UUID, expected: int, what: str
) -> store.Versioned:
    """Bump the version if it is still `expected`; 404 if gone, 412 if someone else got there first."""
    if not await store.bump_version(session, model, object_id, expected):
        current = await store.live(session, model, object_id)
        if current is None:
            raise NotFound(what)
        raise PreconditionFailed(current.version)
    obj = await store.live(session, model, object_id)
    if obj is None:  # pragma: no cover - just bumped
        raise NotFound(what)
    await session.refresh(obj)
    return obj


def set_values(obj: Any, values: dict[str, Any]) -> None:
    for key, value in values.items():
        setattr(obj, key, value)
