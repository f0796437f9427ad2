"""socket.io signalling for meetings. Every event is validated, authorised against the meeting and
rate limited per connection. Server→client events: video:offer, video:participants, video:lobby,
video:admitted, video:removed, video:ended, video:mute_request, video:media_failed (docs/video.md).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import asdict
from functools import wraps
from typing import Any

from pydantic import BaseModel, Field

from server.core.context import AppContext
from server.core.errors import Problem
from server.core.principal import Principal
from server.core.realtime import EventHandler, EventRouter
from server.video import service
from server.video.cluster import ROOM_DIRECTORY, Directory
from server.video.turn import ice_servers

events = EventRouter()


class MeetingRef(BaseModel):
    meeting_id: uuid.UUID


class Answer(MeetingRef):
    sdp: str = Field(min_length=10, max_length=60_000)


class Candidate(MeetingRef):
    candidate: str = Field(max_length=1000, description="a=candidate line value; empty = end of candidates")
    sdp_mid: str | None = Field(default=None, max_length=32)
    sdp_mline_index: int | None = Field(default=None, ge=0, le=200)


class Target(MeetingRef):
    participant_id: str = Field(min_length=1, max_length=64)


class Mute(MeetingRef):
    participant_id: str | None = Field(default=None, max_length=64, description="Someone else (hosts): ask to mute.")
    audio: bool | None = None
    video: bool | None = None
    screen: bool | None = None
    hand: bool | None = Field(default=None, description="Raise (true) or lower (false) my hand; own state only.")


class Bandwidth(MeetingRef):
    audio_only: bool


def rooms_of(ctx: AppContext) -> Directory:
    """Room operations run on the meeting's owner node (server/video/cluster.py)."""
    return ctx.need(ROOM_DIRECTORY)


def limited(name: str, limit: int, window: float = 10.0) -> Callable[[EventHandler], EventHandler]:
    """Per-connection rate limit for one event."""

    def wrap(handler: EventHandler) -> EventHandler:
        @wraps(handler)
        async def run(ctx: AppContext, principal: Principal, sid: str, payload: Any) -> dict[str, Any] | None:
            if not await ctx.limiter.hit(f"video:{sid}:{name}", limit, window):
                raise Problem("rate_limited", f"Too many '{name}' events; slow down.", status=429)
            return await handler(ctx, principal, sid, payload)

        return run

    return wrap


@events.on("video:join", MeetingRef, "Join (or knock on) a meeting; re-send after video:admitted", allow_guests=True)
@limited("video:join", 10)
async def join(ctx: AppContext, principal: Principal, sid: str, body: MeetingRef) -> dict[str, Any]:
    admitted = await service.Meetings.of(ctx).admit(principal, body.meeting_id)
    access = admitted.access
    result: dict[str, Any] = await rooms_of(ctx).call(
        access.id,
        "join",
        sid,
        title=access.meeting.title,
        subject=str(principal.user_id),
        guest=principal.is_guest,
        identity=asdict(admitted.identity),
        host=admitted.host,
        direct=admitted.direct,
    )
    if result["state"] == "joined":
        settings = ctx.settings
        servers = ice_servers(
            settings.turn_urls, settings.turn_secret, result["participant_id"], ctx.clock(), settings.turn_ttl_seconds
        )
        result["ice_servers"] = [server.model_dump(exclude_none=True) for server in servers]
        result["ice_transport_policy"] = settings.video_ice_transport_policy
        result["chat_conversation_id"] = await chat_conversation(ctx, principal, access.meeting.conversation_id)
    return result


async def chat_conversation(ctx: AppContext, principal: Principal, conversation_id: uuid.UUID | None) -> str | None:
    """The meeting chat is the linked conversation, for those who may post in it (never guests: it is the
    units' clinical record of the case)."""
    if conversation_id is None or principal.is_guest:
        return None
    allowed_to_post = await ctx.conversation_gate().may(principal, "conversation.post", conversation_id)
    return str(conversation_id) if allowed_to_post else None


@events.on("video:answer", Answer, "The browser's SDP answer to a video:offer", allow_guests=True)
@limited("video:answer", 30)
async def answer(ctx: AppContext, principal: Principal, sid: str, body: Answer) -> None:
    await rooms_of(ctx).call(body.meeting_id, "answer", sid, sdp=body.sdp)


@events.on("video:candidate", Candidate, "A trickled ICE candidate", allow_guests=True)
@limited("video:candidate", 100)
async def candidate(ctx: AppContext, principal: Principal, sid: str, body: Candidate) -> None:
    await rooms_of(ctx).call(
        body.meeting_id,
        "candidate",
        sid,
        candidate=body.candidate,
        sdp_mid=body.sdp_mid,
        sdp_mline_index=body.sdp_mline_index,
    )


@events.on("video:admit", Target, "Let a waiting participant in (hosts)", allow_guests=True)
@limited("video:admit", 30)
async def admit(ctx: AppContext, principal: Principal, sid: str, body: Target) -> None:
    await rooms_of(ctx).call(body.meeting_id, "admit", sid, participant_id=body.participant_id)
    await service.Meetings.of(ctx).audit(principal, "video.meeting.admit", body.meeting_id)


@events.on("video:remove", Target, "Remove a participant or turn away a waiting one (hosts)", allow_guests=True)
@limited("video:remove", 30)
async def remove(ctx: AppContext, principal: Principal, sid: str, body: Target) -> None:
    await rooms_of(ctx).call(body.meeting_id, "remove", sid, participant_id=body.participant_id)
    await service.Meetings.of(ctx).audit(principal, "video.meeting.remove", body.meeting_id)


@events.on("video:leave", MeetingRef, "Leave the meeting", allow_guests=True)
@limited("video:leave", 10)
async def leave(ctx: AppContext, principal: Principal, sid: str, body: MeetingRef) -> None:
    await rooms_of(ctx).call(body.meeting_id, "leave", sid)


@events.on(
    "video:mute",
    Mute,
    "My microphone/camera/screen state and raised hand, or ask someone to mute (hosts)",
    allow_guests=True,
)
@limited("video:mute", 30)
async def mute(ctx: AppContext, principal: Principal, sid: str, body: Mute) -> None:
    changes = {key: value for key in ("audio", "video", "screen", "hand") if (value := getattr(body, key)) is not None}
    await rooms_of(ctx).call(body.meeting_id, "mute", sid, participant_id=body.participant_id, changes=changes)


@events.on("video:bandwidth", Bandwidth, "Audio-only low-bandwidth mode: stop receiving video", allow_guests=True)
@limited("video:bandwidth", 10)
async def bandwidth(ctx: AppContext, principal: Principal, sid: str, body: Bandwidth) -> None:
    await rooms_of(ctx).call(body.meeting_id, "audio_only", sid, on=body.audio_only)


@events.on("video:end", MeetingRef, "End the meeting for everyone (hosts)", allow_guests=True)
@limited("video:end", 5)
async def end(ctx: AppContext, principal: Principal, sid: str, body: MeetingRef) -> None:
    await rooms_of(ctx).call(body.meeting_id, "check_host", sid)
    await service.Meetings.of(ctx).end(principal, body.meeting_id)
    await rooms_of(ctx).call(body.meeting_id, "end")
