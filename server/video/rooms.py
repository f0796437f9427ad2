"""Live meeting rooms on this node: who waits, who is in, and wiring participants to the media plane.

Admission is enforced here, not in the browser: a waiting participant is in no socket.io room that
receives the participant list, and is never joined to the media backend, so it gets no media.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from dataclasses import dataclass, field
from typing import Any, Protocol

from server.core.errors import Forbidden, NotFound, Problem
from server.identity.principal import Principal
from server.video.media import MediaBackend, MediaUnavailable
from server.video.service import Identity

log = logging.getLogger("brygga.video.rooms")


class Emitter(Protocol):
    """The part of socket.io the rooms need (python-socketio's AsyncServer satisfies it)."""

    async def emit(self, event: str, data: Any = None, *, to: str | None = None, **kwargs: Any) -> None: ...
    async def enter_room(self, sid: str, room: str, namespace: str | None = None) -> None: ...
    async def leave_room(self, sid: str, room: str, namespace: str | None = None) -> None: ...
    async def disconnect(self, sid: str, namespace: str | None = None, ignore_queue: bool = False) -> None: ...


def joined_room(meeting_id: uuid.UUID) -> str:
    return f"meeting:{meeting_id}"


def hosts_room(meeting_id: uuid.UUID) -> str:
    return f"meeting:{meeting_id}:hosts"


@dataclass(eq=False)
class Participant:
    id: str
    sid: str
    principal: Principal
    identity: Identity
    host: bool
    state: str  # waiting | admitted | joined
    audio: bool = True
    video: bool = True
    screen: bool = False
    media_task: asyncio.Future[None] | None = None

    def public(self) -> dict[str, Any]:
        return {
            "participant_id": self.id,
            "name": self.identity.name,
            "organisation": self.identity.organisation,
            "unit": self.identity.unit,
            "identity_method": self.identity.identity_method,
            "host": self.host,
            "guest": self.principal.is_guest,
            "audio": self.audio,
            "video": self.video,
            "screen": self.screen,
        }


@dataclass(eq=False)
class Room:
    meeting_id: uuid.UUID
    title: str
    participants: dict[str, Participant] = field(default_factory=dict)

    def joined(self) -> list[Participant]:
        return [p for p in self.participants.values() if p.state == "joined"]

    def waiting(self) -> list[Participant]:
        return [p for p in self.participants.values() if p.state != "joined"]

    def of_sid(self, sid: str) -> Participant | None:
        return next((p for p in self.participants.values() if p.sid == sid), None)


class Rooms:
    def __init__(self, sio: Emitter, media: MediaBackend) -> None:
        self.sio = sio
        self.media = media
        self.rooms: dict[uuid.UUID, Room] = {}
        self.lock = asyncio.Lock()  # room changes are short; one lock keeps them consistent
        self.tasks: set[asyncio.Future[None]] = set()

    # queries ------------------------------------------------------------------------------------

    def participant(self, meeting_id: uuid.UUID, sid: str) -> Participant:
        room = self.rooms.get(meeting_id)
        participant = room.of_sid(sid) if room else None
        if participant is None:
            raise Problem("not_in_meeting", "Join the meeting first (video:join).", status=409)
        return participant

    def joined_participant(self, meeting_id: uuid.UUID, sid: str) -> Participant:
        participant = self.participant(meeting_id, sid)
        if participant.state != "joined":
            raise Forbidden("Wait until a host lets you in.")
        return participant

    def host(self, meeting_id: uuid.UUID, sid: str) -> Participant:
        participant = self.joined_participant(meeting_id, sid)
        if not participant.host:
            raise Forbidden("Only the meeting's hosts can do this.")
        return participant

    def by_participant_id(self, meeting_id: uuid.UUID) -> dict[str, Participant]:
        room = self.rooms.get(meeting_id)
        return room.participants if room else {}

    # changes ------------------------------------------------------------------------------------

    async def join(
        self,
        meeting_id: uuid.UUID,
        title: str,
        principal: Principal,
        identity: Identity,
        sid: str,
        *,
        host: bool,
        direct: bool,
    ) -> dict[str, Any]:
        async with self.lock:
            room = self.rooms.setdefault(meeting_id, Room(meeting_id, title))
            participant = room.of_sid(sid)
            if participant is None:
                participant = Participant(
                    uuid.uuid4().hex, sid, principal, identity, host, "admitted" if direct else "waiting"
                )
                room.participants[participant.id] = participant
            if participant.state == "waiting":
                await self._lobby_changed(room)
                return {"state": "waiting", "participant_id": participant.id, "title": room.title}
            if participant.state == "admitted":
                participant.state = "joined"
                await self.sio.enter_room(sid, joined_room(meeting_id))
                if host:
                    await self.sio.enter_room(sid, hosts_room(meeting_id))
                await self._participants_changed(room)
                await self._lobby_changed(room)
                task = asyncio.ensure_future(self._start_media(room, participant))
                participant.media_task = task
                self.tasks.add(task)
                task.add_done_callback(self.tasks.discard)
            return {
                "state": "joined",
                "participant_id": participant.id,
                "title": room.title,
                "host": participant.host,
                "participants": [p.public() for p in room.joined()],
                "waiting": [p.public() for p in room.waiting()] if participant.host else [],
            }

    async def _start_media(self, room: Room, participant: Participant) -> None:
        try:
            await self.media.join(room.meeting_id, participant.id)
            await self.media.publish(room.meeting_id, participant.id)
            for other in room.joined():
                if other is participant:
                    continue
                await self.media.subscribe(room.meeting_id, participant.id, other.id)
                await self.media.subscribe(room.meeting_id, other.id, participant.id)
        except (MediaUnavailable, TimeoutError):
            log.warning("media start failed", extra={"meeting": str(room.meeting_id)})
            await self.sio.emit("video:media_failed", {"meeting_id": str(room.meeting_id)}, to=participant.sid)

    async def admit(self, meeting_id: uuid.UUID, host_sid: str, participant_id: str) -> None:
        self.host(meeting_id, host_sid)
        async with self.lock:
            room = self.rooms[meeting_id]
            target = room.participants.get(participant_id)
            if target is None or target.state != "waiting":
                raise NotFound("waiting participant")
            target.state = "admitted"
        await self.sio.emit("video:admitted", {"meeting_id": str(meeting_id)}, to=target.sid)

    async def remove(self, meeting_id: uuid.UUID, host_sid: str, participant_id: str) -> None:
        self.host(meeting_id, host_sid)
        target = self.by_participant_id(meeting_id).get(participant_id)
        if target is None:
            raise NotFound("participant")
        await self._drop(meeting_id, target, "video:removed")

    async def leave(self, meeting_id: uuid.UUID, sid: str) -> None:
        await self._drop(meeting_id, self.participant(meeting_id, sid), None)

    async def _drop(self, meeting_id: uuid.UUID, target: Participant, notice: str | None) -> None:
        async with self.lock:
            room = self.rooms.get(meeting_id)
            if room is None or room.participants.pop(target.id, None) is None:
                return
            await self.sio.leave_room(target.sid, joined_room(meeting_id))
            await self.sio.leave_room(target.sid, hosts_room(meeting_id))
            if notice:
                await self.sio.emit(notice, {"meeting_id": str(meeting_id)}, to=target.sid)
            was_joined = target.state == "joined"
            await self._participants_changed(room)
            await self._lobby_changed(room)
            if not room.participants:
                del self.rooms[meeting_id]
        if was_joined:
            if target.media_task is not None and not target.media_task.done():
                with contextlib.suppress(Exception):
                    await target.media_task  # leave only after join reached the media plane
            await self.media.leave(meeting_id, target.id)

    async def mute(self, meeting_id: uuid.UUID, sid: str, target_id: str | None, changes: dict[str, bool]) -> None:
        me = self.joined_participant(meeting_id, sid)
        if target_id and target_id != me.id:
            if not me.host:
                raise Forbidden("Only hosts can ask others to mute.")
            target = self.by_participant_id(meeting_id).get(target_id)
            if target is None:
                raise NotFound("participant")
            # A host may ask someone to turn things off, never on (no remote camera activation).
            request = {key: False for key, value in changes.items() if value is False and key != "screen"}
            await self.sio.emit("video:mute_request", {"meeting_id": str(meeting_id), **request}, to=target.sid)
            return
        for key, value in changes.items():
            setattr(me, key, value)
        await self._participants_changed(self.rooms[meeting_id])

    async def audio_only(self, meeting_id: uuid.UUID, sid: str, on: bool) -> None:
        me = self.joined_participant(meeting_id, sid)
        if me.media_task is not None and not me.media_task.done():
            await me.media_task  # the relay must know the participant first
        await self.media.audio_only(meeting_id, me.id, on)

    async def end(self, meeting_id: uuid.UUID) -> None:
        async with self.lock:
            room = self.rooms.pop(meeting_id, None)
        if room is not None:
            for participant in room.participants.values():
                await self.sio.emit("video:ended", {"meeting_id": str(meeting_id)}, to=participant.sid)
                await self.sio.leave_room(participant.sid, joined_room(meeting_id))
                await self.sio.leave_room(participant.sid, hosts_room(meeting_id))
        await self.media.close_room(meeting_id)

    async def drop_guest(self, meeting_id: uuid.UUID, link_id: uuid.UUID) -> None:
        """A revoked guest link: remove that guest and close their connection."""
        for participant in list(self.by_participant_id(meeting_id).values()):
            if participant.principal.is_guest and participant.principal.user_id == link_id:
                await self._drop(meeting_id, participant, "video:removed")
                await self.sio.disconnect(participant.sid)

    async def disconnected(self, sid: str) -> None:
        for meeting_id, room in list(self.rooms.items()):
            participant = room.of_sid(sid)
            if participant is not None:
                await self._drop(meeting_id, participant, None)

    # media plane callbacks ----------------------------------------------------------------------

    async def on_signal(self, meeting_id: uuid.UUID, participant_id: str, message: dict[str, Any]) -> None:
        participant = self.by_participant_id(meeting_id).get(participant_id)
        if participant is None:
            return
        kind = message.pop("type")
        if kind == "offer":
            await self.sio.emit(
                "video:offer", {"meeting_id": str(meeting_id), "type": "offer", **message}, to=participant.sid
            )
        elif kind == "failed":
            await self._drop(meeting_id, participant, "video:media_failed")

    # broadcasts ---------------------------------------------------------------------------------

    async def _participants_changed(self, room: Room) -> None:
        await self.sio.emit(
            "video:participants",
            {"meeting_id": str(room.meeting_id), "participants": [p.public() for p in room.joined()]},
            to=joined_room(room.meeting_id),
        )

    async def _lobby_changed(self, room: Room) -> None:
        await self.sio.emit(
            "video:lobby",
            {"meeting_id": str(room.meeting_id), "waiting": [p.public() for p in room.waiting()]},
            to=hosts_room(room.meeting_id),
        )
