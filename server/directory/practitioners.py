"""Published people: FHIR Practitioner (a user) and PractitionerRole (a public unit membership) as derived views.

Neither has a version column of its own: what they show lives in the version log (`directory_versions`,
kinds `practitioner` and `practitioner_role`), and `sync` appends a version whenever what a resource shows
differs from its latest one: published (create), changed (update), or no longer shown (delete: made
non-public, membership removed, unit deleted, account disabled). FHIR reads, searches and `_history`
of these types read the log only, so they always agree.

A role is shown when its membership is public, its unit is not deleted and its user is not disabled; a
person is shown while they have a shown role. Never a personal identity number: the person's name and,
when the system has one, their HSA-id.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from server.core.db import utcnow
from server.core.models import Membership, Unit, User
from server.core.principal import Principal
from server.directory import store
from server.directory.models import DirectoryVersion
from server.directory.schemas import PublicationOut
from server.directory.versioning import version_row

PERSON, ROLE = "practitioner", "practitioner_role"


def set_publication(membership: Membership, public: bool, title: str | None, code: str | None) -> None:
    """Publish (or withdraw) a membership; its PractitionerRole id is given once and kept."""
    membership.public = public
    membership.role_title = title
    membership.role_code = code
    if public and membership.public_id is None:
        membership.public_id = uuid.uuid4()


async def publication_out(session: AsyncSession, membership: Membership) -> PublicationOut:
    role_id = membership.public_id
    last = None
    if role_id is not None:
        last = (await store.latest_versions(session, ROLE, [role_id])).get(role_id)
    return PublicationOut(
        unit_id=membership.unit_id,
        user_id=membership.user_id,
        public=membership.public,
        role_title=membership.role_title,
        role_code=membership.role_code,
        practitioner_role_id=role_id,
        fhir_version=last.version if last else None,
    )


def role_snapshot(membership: Membership) -> dict[str, Any]:
    return {
        "id": str(membership.public_id),
        "practitioner_id": str(membership.user_id),
        "unit_id": str(membership.unit_id),
        "title": membership.role_title,
        "code": membership.role_code,
    }


def person_snapshot(user: User) -> dict[str, Any]:
    return {"id": str(user.id), "name": user.display_name, "hsa_id": user.hsa_id}


def shown(membership: Membership, user: User, unit: Unit) -> bool:
    return membership.public and not user.disabled and unit.deleted_at is None


async def sync(
    session: AsyncSession,
    *,
    user_ids: Iterable[uuid.UUID] = (),
    unit_ids: Iterable[uuid.UUID] = (),
    withdrawn: Iterable[uuid.UUID] = (),
    actor: Principal | None = None,
    now: datetime | None = None,
) -> None:
    """Record a version of every role of these users/units (and of the `withdrawn` role ids, whose
    memberships are gone) and of their people whose shown state changed."""
    users, units = set(user_ids), set(unit_ids)
    roles: dict[uuid.UUID, dict[str, Any] | None] = dict.fromkeys(withdrawn)
    for membership, user, unit in await _ever_published(session, users, units):
        assert membership.public_id is not None  # selected so
        roles[membership.public_id] = role_snapshot(membership) if shown(membership, user, unit) else None
        users.add(user.id)
    people = await _shown_people(session, users)
    at = now or utcnow()
    await _record(session, ROLE, roles, actor, at)
    await _record(session, PERSON, {user_id: people.get(user_id) for user_id in users}, actor, at)


async def _ever_published(
    session: AsyncSession, users: set[uuid.UUID], units: set[uuid.UUID]
) -> list[tuple[Membership, User, Unit]]:
    if not users and not units:
        return []
    rows = await session.execute(
        select(Membership, User, Unit)
        .join(User, User.id == Membership.user_id)
        .join(Unit, Unit.id == Membership.unit_id)
        .where(Membership.public_id.is_not(None), or_(Membership.user_id.in_(users), Membership.unit_id.in_(units)))
    )
    return [(membership, user, unit) for membership, user, unit in rows.all()]


async def _shown_people(session: AsyncSession, users: set[uuid.UUID]) -> dict[uuid.UUID, dict[str, Any]]:
    """Snapshots of those of `users` who have a shown role."""
    if not users:
        return {}
    rows = await session.execute(
        select(User)
        .join(Membership, Membership.user_id == User.id)
        .join(Unit, Unit.id == Membership.unit_id)
        .where(User.id.in_(users), User.disabled.is_(False), Membership.public.is_(True), Unit.deleted_at.is_(None))
    )
    # A person shown in several units comes once per role; the dict keeps one. (No DISTINCT: PostgreSQL
    # cannot compare the JSON columns of users.)
    return {user.id: person_snapshot(user) for user in rows.scalars()}


async def _record(
    session: AsyncSession,
    kind: str,
    wanted: dict[uuid.UUID, dict[str, Any] | None],
    actor: Principal | None,
    at: datetime,
) -> None:
    latest = await store.latest_versions(session, kind, list(wanted))
    for object_id, after in wanted.items():
        last = latest.get(object_id)
        before = last.snapshot if last is not None and last.operation != "delete" else None
        if after == before:
            continue
        operation = "delete" if after is None else "create" if last is None else "update"
        number = last.version + 1 if last is not None else 1
        row = version_row(actor, kind, object_id, number, operation, before or {}, after or before or {}, at)
        session.add(DirectoryVersion(**row))
