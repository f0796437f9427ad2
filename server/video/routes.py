"""HTTP: meetings, upcoming meetings per unit, guest links and their redemption, the meeting page."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from aiohttp import web
from pydantic import BaseModel, Field

from server.core.api import ApiRouter, Instant, path_uuid
from server.core.context import AppContext, ctx_of
from server.core.errors import Problem
from server.core.http import client_address
from server.core.policy import allowed
from server.identity.authn import principal_of
from server.video import service
from server.video.cluster import ROOM_DIRECTORY
from server.video.models import GuestLink
from server.video.service import MEETING_PAGE

api = ApiRouter()
TAGS = ["video"]


class MeetingCreate(BaseModel):
    title: str = Field(min_length=1, max_length=200)
    starts_at: Instant = Field(description="Start with a time zone offset.")
    duration_minutes: int = Field(default=60, ge=5, le=12 * 60)
    organiser_unit_id: uuid.UUID | None = Field(default=None, description="Your unit; optional if you have one.")
    invited_unit_ids: list[uuid.UUID] = Field(default_factory=list, max_length=20)
    invited_user_ids: list[uuid.UUID] = Field(default_factory=list, max_length=50)
    conversation_id: uuid.UUID | None = Field(default=None, description="The conversation the meeting belongs to.")


class InvitedUnit(BaseModel):
    unit_id: uuid.UUID
    unit_name: str
    organisation_name: str


class MeetingOut(BaseModel):
    id: uuid.UUID
    title: str
    starts_at: datetime
    ends_at: datetime
    status: str
    organiser_user_id: uuid.UUID
    organiser_unit_id: uuid.UUID
    conversation_id: uuid.UUID | None
    invited_units: list[InvitedUnit]
    invited_user_ids: list[uuid.UUID]
    created_at: datetime
    join_path: str = Field(description="Open this page (same origin) to join.")
    can_host: bool


class MeetingList(BaseModel):
    items: list[MeetingOut]


class UpcomingQuery(BaseModel):
    unit_id: uuid.UUID | None = Field(default=None, description="One of your units; default: all of yours.")
    conversation_id: uuid.UUID | None = Field(
        default=None, description="Instead: every meeting booked from this conversation (past ones too) you may see."
    )
    limit: int = Field(default=50, ge=1, le=200)


class GuestLinkCreate(BaseModel):
    label: str | None = Field(default=None, max_length=100, description="Your note, e.g. 'Patient' or 'Anhörig'.")
    ttl_minutes: int | None = Field(default=None, ge=5, le=7 * 24 * 60, description="Default: meeting end + 1 h.")


class GuestLinkOut(BaseModel):
    id: uuid.UUID
    meeting_id: uuid.UUID
    label: str | None
    created_at: datetime
    expires_at: datetime
    revoked_at: datetime | None
    redeemed_at: datetime | None
    guest_name: str | None


class GuestLinkCreated(GuestLinkOut):
    url: str = Field(description="Send to the guest. Shown only once.")
    code: str = Field(description="One-time code: tell the guest by phone or SMS, separately from the link.")


class GuestLinkList(BaseModel):
    items: list[GuestLinkOut]


class GuestRedeem(BaseModel):
    link: str = Field(min_length=20, max_length=100, description="The secret from the link's #guest= fragment.")
    name: str = Field(min_length=1, max_length=100, description="The guest's name, as shown to others.")
    code: str = Field(pattern=r"^\d{6}$", description="The one-time code the host gave.")


class GuestSession(BaseModel):
    guest_token: str = Field(description="Pass as socket.io auth {guest_token}. Valid for this meeting only.")
    meeting_id: uuid.UUID
    title: str
    starts_at: datetime
    expires_at: datetime


async def meeting_out(ctx: AppContext, access: service.MeetingAccess, can_host: bool) -> MeetingOut:
    meeting = access.meeting
    names = await service.Meetings.of(ctx).unit_names(access)
    return MeetingOut(
        id=meeting.id,
        title=meeting.title,
        starts_at=meeting.starts_at,
        ends_at=meeting.ends_at,
        status=meeting.status,
        organiser_user_id=meeting.organiser_user_id,
        organiser_unit_id=meeting.organiser_unit_id,
        conversation_id=meeting.conversation_id,
        invited_units=[
            InvitedUnit(unit_id=unit_id, unit_name=unit, organisation_name=organisation)
            for unit_id, (unit, organisation) in names.items()
        ],
        invited_user_ids=sorted(access.user_ids, key=str),
        created_at=meeting.created_at,
        join_path=f"{MEETING_PAGE}#meeting={meeting.id}",
        can_host=can_host,
    )


def link_out(link: GuestLink) -> GuestLinkOut:
    return GuestLinkOut.model_validate(link, from_attributes=True)


@api.route(
    "POST",
    "/api/v1/meetings",
    summary="Book a video meeting",
    tags=TAGS,
    body=MeetingCreate,
    response=MeetingOut,
    status=201,
    errors=(404,),
)
async def create_meeting(request: web.Request, body: MeetingCreate) -> MeetingOut:
    ctx = ctx_of(request)
    access = await service.Meetings.of(ctx).book(
        principal_of(request),
        ctx.conversation_gate(),
        title=body.title,
        starts_at=body.starts_at,
        duration=timedelta(minutes=body.duration_minutes),
        organiser_unit_id=body.organiser_unit_id,
        unit_ids=body.invited_unit_ids,
        user_ids=body.invited_user_ids,
        conversation_id=body.conversation_id,
    )
    return await meeting_out(ctx, access, True)


@api.route(
    "GET",
    "/api/v1/meetings",
    summary="Upcoming meetings of my units (or one unit), or every meeting of a conversation",
    tags=TAGS,
    query=UpcomingQuery,
    response=MeetingList,
)
async def list_meetings(request: web.Request, query: UpcomingQuery) -> MeetingList:
    ctx = ctx_of(request)
    principal = principal_of(request)
    meetings = service.Meetings.of(ctx)
    if query.conversation_id is not None:
        upcoming = await meetings.of_conversation(principal, query.conversation_id, query.limit)
    else:
        upcoming = await meetings.upcoming(principal, query.unit_id, query.limit)
    return MeetingList(
        items=[await meeting_out(ctx, access, allowed(principal, "video.meeting.host", access)) for access in upcoming]
    )


@api.route("GET", "/api/v1/meetings/{meeting_id}", summary="One meeting", tags=TAGS, response=MeetingOut, errors=(404,))
async def get_meeting(request: web.Request) -> MeetingOut:
    ctx = ctx_of(request)
    principal = principal_of(request)
    access = await service.Meetings.of(ctx).visible(principal, path_uuid(request, "meeting_id", "meeting"))
    return await meeting_out(ctx, access, allowed(principal, "video.meeting.host", access))


@api.route(
    "POST",
    "/api/v1/meetings/{meeting_id}/end",
    summary="End a meeting for everyone (hosts)",
    tags=TAGS,
    status=204,
    errors=(404,),
)
async def end_meeting(request: web.Request) -> None:
    ctx = ctx_of(request)
    meeting_id = path_uuid(request, "meeting_id", "meeting")
    await service.Meetings.of(ctx).end(principal_of(request), meeting_id)
    directory = ctx.find(ROOM_DIRECTORY)
    if directory is not None:
        await directory.call(meeting_id, "end")


@api.route(
    "POST",
    "/api/v1/meetings/{meeting_id}/guest-links",
    summary="Invite a guest (hosts)",
    tags=TAGS,
    body=GuestLinkCreate,
    response=GuestLinkCreated,
    status=201,
    errors=(404, 409),
)
async def create_guest_link(request: web.Request, body: GuestLinkCreate) -> GuestLinkCreated:
    ctx = ctx_of(request)
    meeting_id = path_uuid(request, "meeting_id", "meeting")
    ttl = timedelta(minutes=body.ttl_minutes) if body.ttl_minutes else None
    created = await service.Meetings.of(ctx).create_link(principal_of(request), meeting_id, label=body.label, ttl=ttl)
    base = ctx.settings.public_base_url.rstrip("/")
    return GuestLinkCreated(
        **link_out(created.link).model_dump(),
        url=f"{base}{MEETING_PAGE}#guest={created.secret}",  # a fragment: never sent to the server
        code=created.code,
    )


@api.route(
    "GET",
    "/api/v1/meetings/{meeting_id}/guest-links",
    summary="Guest links of a meeting (hosts)",
    tags=TAGS,
    response=GuestLinkList,
    errors=(404,),
)
async def list_guest_links(request: web.Request) -> GuestLinkList:
    ctx = ctx_of(request)
    meeting_id = path_uuid(request, "meeting_id", "meeting")
    links = await service.Meetings.of(ctx).links(principal_of(request), meeting_id)
    return GuestLinkList(items=[link_out(link) for link in links])


@api.route(
    "DELETE",
    "/api/v1/meetings/{meeting_id}/guest-links/{link_id}",
    summary="Withdraw a guest link; a guest already in the meeting is removed (hosts)",
    tags=TAGS,
    status=204,
    errors=(404,),
)
async def revoke_guest_link(request: web.Request) -> None:
    ctx = ctx_of(request)
    meeting_id = path_uuid(request, "meeting_id", "meeting")
    link_id = path_uuid(request, "link_id", "guest link")
    await service.Meetings.of(ctx).revoke_link(principal_of(request), meeting_id, link_id)
    directory = ctx.find(ROOM_DIRECTORY)
    if directory is not None:
        await directory.call(meeting_id, "drop_guest", link_id=str(link_id))


@api.route(
    "POST",
    "/api/v1/guest-links/redeem",
    summary="A guest opens a link: name + one-time code",
    tags=TAGS,
    body=GuestRedeem,
    response=GuestSession,
    security="public",
    errors=(403, 404, 410, 429),
)
async def redeem_guest_link(request: web.Request, body: GuestRedeem) -> GuestSession:
    ctx = ctx_of(request)
    if not await ctx.limiter.hit(f"video:redeem:{client_address(request)}", 10, 60):
        raise Problem(
            "rate_limited", "Too many attempts; wait a minute and try again.", status=429, headers={"Retry-After": "60"}
        )
    outcome = await service.Meetings.of(ctx).redeem(body.link, body.name.strip(), body.code)
    if outcome.problem is not None:
        raise outcome.problem  # after commit: failed attempts and the audit row are kept
    assert outcome.link is not None and outcome.meeting is not None and outcome.token is not None
    assert outcome.link.session_expires_at is not None
    return GuestSession(
        guest_token=outcome.token,
        meeting_id=outcome.meeting.id,
        title=outcome.meeting.title,
        starts_at=outcome.meeting.starts_at,
        expires_at=outcome.link.session_expires_at,
    )


def setup_routes(app: web.Application) -> None:
    """Serve the meeting page (a second Vite entry, client_web/meeting.html)."""

    async def meeting_page(request: web.Request) -> web.StreamResponse:
        page = ctx_of(request).settings.web_dist / "meeting.html"
        if not page.is_file():
            raise web.HTTPNotFound()
        return web.FileResponse(page, headers={"Cache-Control": "no-cache"})

    app.router.add_get(MEETING_PAGE, meeting_page)
