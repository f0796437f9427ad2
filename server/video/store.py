"""SQL for meetings, invitations and guest links."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ColumnElement, delete, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from server.core.models import Organisation, Unit, User
from server.video.models import Admission, GuestLink, Meeting, MeetingUnit, MeetingUser


async def get_meeting(session: AsyncSession, meeting_id: uuid.UUID) -> Meeting | None:
    return await session.get(Meeting, meeting_id)


async def invited_units(session: AsyncSession, meeting_id: uuid.UUID) -> list[uuid.UUID]:
    rows = await session.execute(select(MeetingUnit.unit_id).where(MeetingUnit.meeting_id == meeting_id))
    return list(rows.scalars())


async def invited_users(session: AsyncSession, meeting_id: uuid.UUID) -> list[uuid.UUID]:
    rows = await session.execute(select(MeetingUser.user_id).where(MeetingUser.meeting_id == meeting_id))
    return list(rows.scalars())


async def unit_names(session: AsyncSession, unit_ids: list[uuid.UUID]) -> dict[uuid.UUID, tuple[str, str]]:
    """unit id -> (unit name, organisation name)."""
    if not unit_ids:
        return {}
    rows = await session.execute(
        select(Unit.id, Unit.name, Organisation.name)
        .join(Organisation, Organisation.id == Unit.organisation_id)
        .where(Unit.id.in_(unit_ids))
    )
    return {unit_id: (unit, organisation) for unit_id, unit, organisation in rows.all()}


async def upcoming(
    session: AsyncSession,
    *,
    unit_ids: list[uuid.UUID],
    user_id: uuid.UUID | None,
    now: datetime,
    limit: int,
) -> list[Meeting]:
    """Scheduled meetings not yet over where one of `unit_ids` organises or is invited (or the user is)."""
    invited_unit = select(MeetingUnit.meeting_id).where(MeetingUnit.unit_id.in_(unit_ids))
    conditions: list[ColumnElement[bool]] = [Meeting.organiser_unit_id.in_(unit_ids), Meeting.id.in_(invited_unit)]
    if user_id is not None:
        conditions.append(Meeting.organiser_user_id == user_id)
        conditions.append(Meeting.id.in_(select(MeetingUser.meeting_id).where(MeetingUser.user_id == user_id)))
    query = (
        select(Meeting)
        .where(Meeting.status == "scheduled", Meeting.ends_at > now, or_(*conditions))
        .order_by(Meeting.starts_at)
        .limit(limit)
    )
    return list((await session.execute(query)).scalars())


async def of_conversation(session: AsyncSession, conversation_id: uuid.UUID, limit: int) -> list[Meeting]:
    """Every meeting booked from a conversation, whatever its state, earliest first."""
    query = select(Meeting).where(Meeting.conversation_id == conversation_id).order_by(Meeting.starts_at)
    return list((await session.execute(query.limit(limit))).scalars())


async def guest_link_by_secret(session: AsyncSession, secret_hash: str) -> GuestLink | None:
    return (await session.execute(select(GuestLink).where(GuestLink.secret_hash == secret_hash))).scalar_one_or_none()


async def guest_link_by_session(session: AsyncSession, session_hash: str) -> GuestLink | None:
    query = select(GuestLink).where(GuestLink.session_hash == session_hash)
    return (await session.execute(query)).scalar_one_or_none()


async def guest_links(session: AsyncSession, meeting_id: uuid.UUID) -> list[GuestLink]:
    query = select(GuestLink).where(GuestLink.meeting_id == meeting_id).order_by(GuestLink.created_at)
    return list((await session.execute(query)).scalars())


async def existing_users(session: AsyncSession, user_ids: list[uuid.UUID]) -> set[uuid.UUID]:
    rows = await session.execute(select(User.id).where(User.id.in_(user_ids)))
    return set(rows.scalars())


async def admission(session: AsyncSession, meeting_id: uuid.UUID, subject: uuid.UUID) -> Admission | None:
    return await session.get(Admission, (meeting_id, subject))


async def set_admission(
    session: AsyncSession, meeting_id: uuid.UUID, subject: uuid.UUID, state: str, participant_id: str, now: datetime
) -> None:
    row = await session.get(Admission, (meeting_id, subject))
    if row is None:
        session.add(
            Admission(
                meeting_id=meeting_id, subject=subject, state=state, participant_id=participant_id, updated_at=now
            )
        )
    else:
        row.state, row.participant_id, row.updated_at = state, participant_id, now
    await session.flush()


async def delete_admission(session: AsyncSession, meeting_id: uuid.UUID, subject: uuid.UUID) -> None:
    await session.execute(delete(Admission).where(Admission.meeting_id == meeting_id, Admission.subject == subject))
