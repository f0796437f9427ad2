"""Meeting rules: who may create, see, host and join a meeting; guest links and guest sessions.

Framework-free: the rules take an `AsyncSession`, the principal and `now` (from `ctx.clock()`);
`Meetings` runs them for the HTTP routes, each in a transaction of its own.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from server.audit.service import record
from server.core.context import AppContext
from server.core.conversations import ConversationGate
from server.core.db import Database
from server.core.errors import NotFound, Problem
from server.core.policy import allowed, require, rule
from server.core.principal import Principal
from server.video import store
from server.video.models import GuestLink, Meeting, MeetingUnit, MeetingUser

GUEST_TOKEN_PREFIX = "brg_"  # noqa: S105 - a public prefix, not a secret
GUEST_CODE_DIGITS = 6
GUEST_MAX_CODE_ATTEMPTS = 5
GUEST_SESSION_GRACE = timedelta(hours=1)  # a guest session outlives the scheduled end by this much
DEFAULT_DURATION = timedelta(minutes=60)


@dataclass(frozen=True)
class MeetingAccess:
    """A meeting with its invitation lists: the object every video policy rule decides on."""

    meeting: Meeting
    unit_ids: frozenset[uuid.UUID] = field(default_factory=frozenset)
    user_ids: frozenset[uuid.UUID] = field(default_factory=frozenset)

    @property
    def id(self) -> uuid.UUID:
        return self.meeting.id

    @property
    def ended(self) -> bool:
        return self.meeting.status != "scheduled"


# --- policy -------------------------------------------------------------------------------------


@rule("video.meeting.create")
def _create(principal: Principal, organiser_unit_id: Any) -> bool:
    return not principal.is_guest and principal.is_member_of(organiser_unit_id)


@rule("video.meeting.host")
def _host(principal: Principal, access: MeetingAccess) -> bool:
    """The organiser and staff of the organising unit admit, remove and end."""
    if principal.is_guest:
        return False
    meeting = access.meeting
    return principal.user_id == meeting.organiser_user_id or principal.is_member_of(meeting.organiser_unit_id)


@rule("video.meeting.join_direct")
def _join_direct(principal: Principal, access: MeetingAccess) -> bool:
    """Staff of invited (or the organising) units and invited users skip the waiting room."""
    if principal.is_guest:
        return False
    return (
        _host(principal, access)
        or principal.user_id in access.user_ids
        or any(principal.is_member_of(unit_id) for unit_id in access.unit_ids)
    )


@rule("video.meeting.view")
def _view(principal: Principal, access: MeetingAccess) -> bool:
    return _join_direct(principal, access) or principal.guest_meeting_id == access.id


@rule("video.meeting.request_join")
def _request_join(principal: Principal, access: MeetingAccess) -> bool:
    """Anyone with an account may knock (and wait); a guest only at their own meeting."""
    if principal.is_guest:
        return principal.guest_meeting_id == access.id
    return True


# --- meetings -----------------------------------------------------------------------------------


async def load_access(session: AsyncSession, meeting_id: uuid.UUID) -> MeetingAccess:
    meeting = await store.get_meeting(session, meeting_id)
    if meeting is None:
        raise NotFound("meeting")
    return MeetingAccess(
        meeting,
        frozenset(await store.invited_units(session, meeting_id)),
        frozenset(await store.invited_users(session, meeting_id)),
    )


async def visible_meeting(session: AsyncSession, principal: Principal, meeting_id: uuid.UUID) -> MeetingAccess:
    """The meeting if the caller may see it; otherwise the same 404 as for an unknown id."""
    access = await load_access(session, meeting_id)
    if not allowed(principal, "video.meeting.view", access):
        await record(
            session,
            actor=principal,
            action="video.meeting.read",
            object_type="meeting",
            object_id=meeting_id,
            outcome="denied",
        )
        raise NotFound("meeting")
    return access


async def create_meeting(
    session: AsyncSession,
    principal: Principal,
    *,
    title: str,
    starts_at: datetime,
    duration: timedelta | None,
    organiser_unit_id: uuid.UUID | None,
    unit_ids: list[uuid.UUID],
    user_ids: list[uuid.UUID],
    conversation_id: uuid.UUID | None,
    now: datetime,
) -> MeetingAccess:
    if organiser_unit_id is None:
        if len(principal.unit_ids) != 1:
            raise Problem("organiser_unit_required", "Say which of your units organises it (organiser_unit_id).")
        (organiser_unit_id,) = principal.unit_ids
    require(
        principal,
        "video.meeting.create",
        organiser_unit_id,
        detail="You can only organise meetings for a unit you belong to.",
    )
    if starts_at.tzinfo is None:
        raise Problem("naive_time", "Give starts_at with a time zone, e.g. 2026-11-24T09:00:00+01:00.", status=422)
    names = await store.unit_names(session, list({*unit_ids, organiser_unit_id}))
    missing = {*unit_ids, organiser_unit_id} - set(names)
    if missing:
        raise Problem("unknown_unit", f"{len(missing)} invited unit(s) do not exist; check the unit ids.", status=422)
    meeting = Meeting(
        id=uuid.uuid4(),
        title=title,
        starts_at=starts_at,
        ends_at=starts_at + (duration or DEFAULT_DURATION),
        organiser_user_id=principal.user_id,
        organiser_unit_id=organiser_unit_id,
        conversation_id=conversation_id,
        status="scheduled",
        created_at=now,
    )
    session.add(meeting)
    await session.flush()
    for unit_id in dict.fromkeys(unit_ids):
        session.add(MeetingUnit(meeting_id=meeting.id, unit_id=unit_id))
    for user_id in dict.fromkeys(user_ids):
        session.add(MeetingUser(meeting_id=meeting.id, user_id=user_id))
    if user_ids and len(await store.existing_users(session, user_ids)) != len(set(user_ids)):
        raise Problem("unknown_user", "An invited user does not exist; check the user ids.", status=422)
    await session.flush()
    await record(
        session,
        actor=principal,
        action="video.meeting.create",
        object_type="meeting",
        object_id=meeting.id,
        unit_id=organiser_unit_id,
    )
    return MeetingAccess(meeting, frozenset(unit_ids), frozenset(user_ids))


async def upcoming_meetings(
    session: AsyncSession, principal: Principal, unit_id: uuid.UUID | None, now: datetime, limit: int = 100
) -> list[MeetingAccess]:
    if unit_id is not None:
        require(principal, "unit.act_for", unit_id, detail="You can only list meetings of units you belong to.")
        meetings = await store.upcoming(session, unit_ids=[unit_id], user_id=None, now=now, limit=limit)
    else:
        meetings = await store.upcoming(
            session, unit_ids=list(principal.unit_ids), user_id=principal.user_id, now=now, limit=limit
        )
    return [await load_access(session, meeting.id) for meeting in meetings]


async def conversation_meetings(
    session: AsyncSession, principal: Principal, conversation_id: uuid.UUID, limit: int = 100
) -> list[MeetingAccess]:
    """The meetings booked from a conversation (a case's SIP meetings too) that the caller may see."""
    found = [
        await load_access(session, meeting.id)
        for meeting in await store.of_conversation(session, conversation_id, limit)
    ]
    return [access for access in found if allowed(principal, "video.meeting.view", access)]


async def end_meeting(session: AsyncSession, principal: Principal, meeting_id: uuid.UUID, now: datetime) -> Meeting:
    access = await visible_meeting(session, principal, meeting_id)
    require(principal, "video.meeting.host", access, detail="Only the meeting's hosts can end it.")
    meeting = access.meeting
    if meeting.status == "scheduled":
        meeting.status = "ended"
        meeting.ended_at = now
        await record(
            session,
            actor=principal,
            action="video.meeting.end",
            object_type="meeting",
            object_id=meeting.id,
            unit_id=meeting.organiser_unit_id,
        )
    return meeting


# --- guest links --------------------------------------------------------------------------------


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _code_hash(link_secret: str, code: str) -> str:
    # Bound to the link secret (never stored), so the 6-digit code cannot be brute-forced from the table.
    return hmac.new(link_secret.encode(), code.encode(), hashlib.sha256).hexdigest()


@dataclass
class GuestLinkCreated:
    link: GuestLink
    secret: str
    code: str


async def create_guest_link(
    session: AsyncSession,
    principal: Principal,
    meeting_id: uuid.UUID,
    *,
    label: str | None,
    ttl: timedelta | None,
    now: datetime,
) -> GuestLinkCreated:
    access = await visible_meeting(session, principal, meeting_id)
    require(principal, "video.meeting.host", access, detail="Only the meeting's hosts can invite guests.")
    if access.ended:
        raise Problem("meeting_ended", "The meeting has ended; create a new meeting.", status=409)
    secret = secrets.token_urlsafe(32)
    code = f"{secrets.randbelow(10**GUEST_CODE_DIGITS):0{GUEST_CODE_DIGITS}d}"
    expires_at = now + ttl if ttl else access.meeting.ends_at + GUEST_SESSION_GRACE
    link = GuestLink(
        id=uuid.uuid4(),
        meeting_id=meeting_id,
        label=label,
        secret_hash=_hash(secret),
        code_hash=_code_hash(secret, code),
        created_by=principal.user_id,
        created_at=now,
        expires_at=expires_at,
        failed_attempts=0,
    )
    session.add(link)
    await session.flush()
    await _audit_link(session, principal, "video.guest_link.create", link, access)
    return GuestLinkCreated(link, secret, code)


async def _audit_link(
    session: AsyncSession, principal: Principal, action: str, link: GuestLink, access: MeetingAccess
) -> None:
    await record(
        session,
        actor=principal,
        action=action,
        object_type="guest_link",
        object_id=link.id,
        unit_id=access.meeting.organiser_unit_id,
        details={"meeting_id": str(access.id)},
    )


async def list_guest_links(session: AsyncSession, principal: Principal, meeting_id: uuid.UUID) -> list[GuestLink]:
    access = await visible_meeting(session, principal, meeting_id)
    require(principal, "video.meeting.host", access, detail="Only the meeting's hosts can see guest links.")
    return await store.guest_links(session, meeting_id)


async def revoke_guest_link(
    session: AsyncSession, principal: Principal, meeting_id: uuid.UUID, link_id: uuid.UUID, now: datetime
) -> GuestLink:
    access = await visible_meeting(session, principal, meeting_id)
    require(principal, "video.meeting.host", access, detail="Only the meeting's hosts can revoke guest links.")
    link = await session.get(GuestLink, link_id)
    if link is None or link.meeting_id != meeting_id:
        raise NotFound("guest link")
    if link.revoked_at is None:
        link.revoked_at = now
        await _audit_link(session, principal, "video.guest_link.revoke", link, access)
    return link


@dataclass
class Redemption:
    """The outcome of redeeming a link; `problem` is raised by the caller *after* commit, so failed
    attempts are counted even though the request fails."""

    link: GuestLink | None = None
    meeting: Meeting | None = None
    token: str | None = None
    problem: Problem | None = None


GONE = 410


async def redeem_guest_link(session: AsyncSession, secret: str, name: str, code: str, now: datetime) -> Redemption:
    link = await store.guest_link_by_secret(session, _hash(secret))
    if link is None:
        return Redemption(
            problem=Problem("guest_link_invalid", "This link is not valid. Ask the host for a new one.", status=404)
        )
    meeting = await store.get_meeting(session, link.meeting_id)
    failure: Problem | None = None
    if link.revoked_at is not None:
        failure = Problem(
            "guest_link_revoked", "This link has been withdrawn. Ask the host for a new one.", status=GONE
        )
    elif link.redeemed_at is not None:
        failure = Problem(
            "guest_link_used", "This link has already been used. Ask the host for a new one.", status=GONE
        )
    elif link.expires_at <= now:
        failure = Problem("guest_link_expired", "This link has expired. Ask the host for a new one.", status=GONE)
    elif meeting is None or meeting.status != "scheduled":
        failure = Problem("meeting_ended", "The meeting has ended.", status=GONE)
    elif not hmac.compare_digest(link.code_hash, _code_hash(secret, code)):
        link.failed_attempts += 1
        left = GUEST_MAX_CODE_ATTEMPTS - link.failed_attempts
        if left <= 0:
            link.revoked_at = now
            failure = Problem(
                "guest_link_locked",
                "Too many wrong codes; the link is now closed. Ask the host for a new one.",
                status=GONE,
            )
        else:
            failure = Problem("guest_code_invalid", f"The code is wrong. {left} attempt(s) left.", status=403)
    outcome = Redemption(problem=failure)
    if failure is None:
        assert meeting is not None
        token = GUEST_TOKEN_PREFIX + secrets.token_urlsafe(32)
        link.redeemed_at = now
        link.guest_name = name
        link.session_hash = _hash(token)
        link.session_expires_at = max(meeting.ends_at, now) + GUEST_SESSION_GRACE
        outcome = Redemption(link=link, meeting=meeting, token=token)
    await record(
        session,
        actor=None,
        action="video.guest_link.redeem",
        object_type="guest_link",
        object_id=link.id,
        outcome="denied" if failure else "allowed",
        details={"reason": failure.code} if failure else {"meeting_id": str(link.meeting_id)},
    )
    return outcome


async def guest_principal(session: AsyncSession, token: str, now: datetime) -> Principal | None:
    """A guest session token -> a principal scoped to that one meeting; None if unknown/expired/revoked."""
    if not token.startswith(GUEST_TOKEN_PREFIX):
        return None
    link = await store.guest_link_by_session(session, _hash(token))
    if link is None or link.revoked_at is not None or link.session_expires_at is None:
        return None
    if link.session_expires_at <= now:
        return None
    meeting = await store.get_meeting(session, link.meeting_id)
    if meeting is None or meeting.status != "scheduled":
        return None
    return Principal(
        user_id=link.id,
        display_name=link.guest_name or "Gäst",
        auth_method="guest_code",
        guest_meeting_id=link.meeting_id,
    )


# --- who is who in the call ---------------------------------------------------------------------


@dataclass(frozen=True)
class Identity:
    name: str
    organisation: str | None
    unit: str | None
    identity_method: str  # one of KNOWN_METHODS, eid_loa3/4, or "other"


async def participant_identity(session: AsyncSession, principal: Principal, access: MeetingAccess) -> Identity:
    """Name, organisation and how the person was identified, as shown in the video grid."""
    if principal.is_guest:
        return Identity(principal.display_name, None, None, "guest_code")
    preferred = [u for u in (access.meeting.organiser_unit_id, *access.unit_ids) if principal.is_member_of(u)]
    candidates = preferred or sorted(principal.unit_ids, key=str)
    names = await store.unit_names(session, candidates[:1])
    unit, organisation = names.get(candidates[0], (None, None)) if candidates else (None, None)
    return Identity(principal.display_name, organisation, unit, identity_method(principal))


# Identification methods as the meeting page names them; an assurance level (acr) the server does not know
# is "other", never its raw URN.
KNOWN_ACR = {
    "urn:brygga:loa:2fa": "password_otp",  # the built-in provider: password + TOTP
    "http://id.elegnamnden.se/loa/1.0/loa3": "eid_loa3",
    "http://id.elegnamnden.se/loa/1.0/loa4": "eid_loa4",
}
KNOWN_METHODS = {"siths", "bankid", "freja", "password", "password_otp", "token", "session", "guest_code"}


def identity_method(principal: Principal) -> str:
    acr = (principal.acr or "").lower()
    if acr:
        if acr in KNOWN_ACR:
            return KNOWN_ACR[acr]
        return next((method for method in ("siths", "bankid", "freja") if method in acr), "other")
    return principal.auth_method if principal.auth_method in KNOWN_METHODS else "other"


# --------------------------------------------------------------------------------------- the API's entry points

MEETING_PAGE = "/meeting"


def invitation(access: MeetingAccess) -> dict[str, str]:
    """The system message that a meeting booked from a conversation posts in it."""
    return {
        "meeting_id": str(access.id),
        "title": access.meeting.title,
        "starts_at": access.meeting.starts_at.isoformat(),
        "join_path": f"{MEETING_PAGE}#meeting={access.id}",
    }


class Meetings:
    """What the meeting routes do, each in one transaction of its own (routes never open sessions)."""

    def __init__(self, db: Database, clock: Callable[[], datetime]) -> None:
        self.db = db
        self.clock = clock

    @classmethod
    def of(cls, ctx: AppContext) -> Meetings:
        return cls(ctx.db, lambda: ctx.clock())  # the context's clock at each call (tests swap it)

    async def book(
        self,
        principal: Principal,
        conversations: ConversationGate,
        *,
        title: str,
        starts_at: datetime,
        duration: timedelta,
        organiser_unit_id: uuid.UUID | None,
        unit_ids: list[uuid.UUID],
        user_ids: list[uuid.UUID],
        conversation_id: uuid.UUID | None,
    ) -> MeetingAccess:
        if conversation_id is not None:
            # Booking from a conversation posts in it: the caller must be allowed to post there (404 otherwise).
            await conversations.require(principal, "conversation.post", conversation_id)
        async with self.db.transaction() as session:
            access = await create_meeting(
                session,
                principal,
                title=title,
                starts_at=starts_at,
                duration=duration,
                organiser_unit_id=organiser_unit_id,
                unit_ids=unit_ids,
                user_ids=user_ids,
                conversation_id=conversation_id,
                now=self.clock(),
            )
            if access.meeting.conversation_id is not None:
                # The invitation shows in the conversation, committed together with the meeting.
                await conversations.post_system_notice(
                    session, access.meeting.conversation_id, "video_meeting_booked", invitation(access)
                )
        return access

    async def unit_names(self, access: MeetingAccess) -> dict[uuid.UUID, tuple[str, str]]:
        """(unit name, organisation name) of the invited units."""
        async with self.db.transaction() as session:
            return await store.unit_names(session, sorted(access.unit_ids, key=str))

    async def upcoming(self, principal: Principal, unit_id: uuid.UUID | None, limit: int) -> list[MeetingAccess]:
        async with self.db.transaction() as session:
            return await upcoming_meetings(session, principal, unit_id, self.clock(), limit)

    async def of_conversation(
        self, principal: Principal, conversation_id: uuid.UUID, limit: int
    ) -> list[MeetingAccess]:
        async with self.db.transaction() as session:
            return await conversation_meetings(session, principal, conversation_id, limit)

    async def visible(self, principal: Principal, meeting_id: uuid.UUID) -> MeetingAccess:
        async with self.db.transaction() as session:
            return await visible_meeting(session, principal, meeting_id)

    async def end(self, principal: Principal, meeting_id: uuid.UUID) -> None:
        async with self.db.transaction() as session:
            await end_meeting(session, principal, meeting_id, self.clock())

    async def create_link(
        self, principal: Principal, meeting_id: uuid.UUID, *, label: str | None, ttl: timedelta | None
    ) -> GuestLinkCreated:
        async with self.db.transaction() as session:
            return await create_guest_link(session, principal, meeting_id, label=label, ttl=ttl, now=self.clock())

    async def links(self, principal: Principal, meeting_id: uuid.UUID) -> list[GuestLink]:
        async with self.db.transaction() as session:
            return await list_guest_links(session, principal, meeting_id)

    async def revoke_link(self, principal: Principal, meeting_id: uuid.UUID, link_id: uuid.UUID) -> None:
        async with self.db.transaction() as session:
            await revoke_guest_link(session, principal, meeting_id, link_id, self.clock())

    async def redeem(self, secret: str, name: str, code: str) -> Redemption:
        """Failed attempts and the audit row are committed; the caller raises `problem` afterwards."""
        async with self.db.transaction() as session:
            return await redeem_guest_link(session, secret, name, code, self.clock())

    async def admit(self, principal: Principal, meeting_id: uuid.UUID) -> Admitted:
        """Whether the caller may knock (else 404), join directly and host; with their identity. Audited."""
        async with self.db.transaction() as session:
            access = await load_access(session, meeting_id)
            if not allowed(principal, "video.meeting.request_join", access):
                raise NotFound("meeting")
            if access.ended:
                raise Problem("meeting_ended", "The meeting has ended.", status=409)
            direct = allowed(principal, "video.meeting.join_direct", access)
            host = allowed(principal, "video.meeting.host", access)
            identity = await participant_identity(session, principal, access)
            await record(
                session,
                actor=principal,
                action="video.meeting.join",
                object_type="meeting",
                object_id=access.id,
                details={"direct": direct, "guest": principal.is_guest},
            )
        return Admitted(access, direct, host, identity)

    async def audit(self, principal: Principal, action: str, meeting_id: uuid.UUID) -> None:
        async with self.db.transaction() as session:
            await record(session, actor=principal, action=action, object_type="meeting", object_id=meeting_id)


@dataclass(frozen=True)
class Admitted:
    access: MeetingAccess
    direct: bool
    host: bool
    identity: Identity
