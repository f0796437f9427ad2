"""Live meeting rooms owned by this node: who waits, who is in, and wiring participants to the media plane.

Admission is enforced here, not in the browser: a waiting participant is in no socket.io room that
receives the participant list, and is never joined to the media backend, so it gets no media.
Admissions of people who knocked are also kept in the database (`video_admissions`), so the
waiting room and who was let in survive a failover to another node (server/video/cluster.py).

Every operation takes JSON-friendly arguments and the caller's socket id: the owner node runs them
for sockets on any node (socket.io emits and room changes cross nodes through the Redis manager).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any, Protocol

from server.core.db import Database, utcnow
from server.core.errors import Forbidden, NotFound, Problem
from server.video import store
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
    subject: uuid.UUID  # user id, or guest link id
    guest: bool
    identity: Identity
    host: bool
    state: str  # waiting | admitted | joined
    audio: bool = True
    video: bool = True
    screen: bool = False
    hand: bool = False  # raised hand: wants to speak
    media_task: asyncio.Future[None] | None = None

    def public(self) -> dict[str, Any]:
        return {
            "participant_id": self.id,
            "name": self.identity.name,
            "organisation": self.identity.organisation,
            "unit": self.identity.unit,
            "identity_method": self.identity.identity_method,
            "host": self.host,
            "guest": self.guest,
            "audio": self.audio,
            "video": self.video,
            "screen": self.screen,
            "hand": self.hand,
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
    def __init__(self, sio: Emitter, media: MediaBackend, db: Database) -> None:
        self.sio = sio
        self.media = media
        self.db = db
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
        sid: str,
        *,
        title: str,
        subject: str,
        guest: bool,
        identity: dict[str, Any],
        host: bool,
        direct: bool,
    ) -> dict[str, Any]:
        async with self.lock:
            room = self.rooms.setdefault(meeting_id, Room(meeting_id, title))
            participant, replaced = room.of_sid(sid), None
            if participant is None or participant.state == "joined":
                # Joining again on a joined connection means the client lost its media (video:media_failed)
                # and made a fresh peer connection: its old one leaves the media plane first.
                participant, replaced = await self._arrive(
                    room, sid, uuid.UUID(subject), guest, Identity(**identity), host, direct
                )
            if participant.state == "admitted":
                participant.state = "joined"
                await self.sio.enter_room(sid, joined_room(meeting_id))
                if host:
                    await self.sio.enter_room(sid, hosts_room(meeting_id))
                await self._participants_changed(room)
                participant.media_task = self._background(self._start_media(room, participant, replaced))
            elif replaced is not None:
                self._background(self._leave_media(meeting_id, replaced))
            if participant.state == "waiting":
                await self._lobby_changed(room)
                return {"state": "waiting", "participant_id": participant.id, "title": room.title}
            await self._lobby_changed(room)
            return {
                "state": "joined",
                "participant_id": participant.id,
                "title": room.title,
                "host": participant.host,
                "participants": [p.public() for p in room.joined()],
                "waiting": [p.public() for p in room.waiting()] if participant.host else [],
            }

    async def _arrive(
        self, room: Room, sid: str, subject: uuid.UUID, guest: bool, identity: Identity, host: bool, direct: bool
    ) -> tuple[Participant, Participant | None]:
        """A new participant in the room, and the one it replaces (the same person or connection before),
        whose media the caller ends. Someone who knocked keeps their admission (and participant id) from
        the database: let in once is let in after a failover or reconnect too."""
        participant_id, state = uuid.uuid4().hex, "admitted"
        if not direct:
            async with self.db.transaction() as session:
                known = await store.admission(session, room.meeting_id, subject)
                if known is not None:
                    participant_id, state = known.participant_id, known.state
                else:
                    state = "waiting"
                    await store.set_admission(session, room.meeting_id, subject, state, participant_id, utcnow())
        # The same guest on a new connection, or the same connection joining again: the old one is gone.
        stale = room.participants.get(participant_id) or room.of_sid(sid)
        if stale is not None:
            room.participants.pop(stale.id)
            await self._forget(room, stale, None, leave_media=False)
        participant = Participant(participant_id, sid, subject, guest, identity, host, state)
        room.participants[participant.id] = participant
        return participant, stale if stale is not None and stale.state == "joined" else None

    def _background(self, work: Coroutine[Any, Any, None]) -> asyncio.Future[None]:
        task = asyncio.ensure_future(work)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return task

    async def _start_media(self, room: Room, participant: Participant, replaced: Participant | None) -> None:
        if replaced is not None:  # in order: the relay must not drop the new peer for the old one's leave
            await self._leave_media(room.meeting_id, replaced)
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

    async def admit(self, meeting_id: uuid.UUID, sid: str, *, participant_id: str) -> None:
        self.host(meeting_id, sid)
        async with self.lock:
            room = self.rooms[meeting_id]
            target = room.participants.get(participant_id)
            if target is None or target.state != "waiting":
                raise NotFound("waiting participant")
            async with self.db.transaction() as session:
                await store.set_admission(session, meeting_id, target.subject, "admitted", target.id, utcnow())
            target.state = "admitted"
        await self.sio.emit("video:admitted", {"meeting_id": str(meeting_id)}, to=target.sid)

    async def remove(self, meeting_id: uuid.UUID, sid: str, *, participant_id: str) -> None:
        self.host(meeting_id, sid)
        target = self.by_participant_id(meeting_id).get(participant_id)
        if target is None:
            raise NotFound("participant")
        async with self.db.transaction() as session:  # turned away: knocking again means waiting again
            await store.delete_admission(session, meeting_id, target.subject)
        await self._drop(meeting_id, target, "video:removed")

    async def leave(self, meeting_id: uuid.UUID, sid: str) -> None:
        await self._drop(meeting_id, self.participant(meeting_id, sid), None)

    async def _drop(self, meeting_id: uuid.UUID, target: Participant, notice: str | None) -> None:
        async with self.lock:
            room = self.rooms.get(meeting_id)
            if room is None or room.participants.get(target.id) is not target:
                return
            del room.participants[target.id]
            await self._forget(room, target, notice)
            if not room.participants:
                del self.rooms[meeting_id]

    async def _forget(self, room: Room, target: Participant, notice: str | None, *, leave_media: bool = True) -> None:
        """Take someone out of the room's socket.io rooms, lists and (unless the caller does) media, under
        the lock."""
        meeting_id = room.meeting_id
        await self.sio.leave_room(target.sid, joined_room(meeting_id))
        await self.sio.leave_room(target.sid, hosts_room(meeting_id))
        if notice:
            await self.sio.emit(notice, {"meeting_id": str(meeting_id)}, to=target.sid)
        await self._participants_changed(room)
        await self._lobby_changed(room)
        if target.state == "joined" and leave_media:
            self._background(self._leave_media(meeting_id, target))

    async def _leave_media(self, meeting_id: uuid.UUID, target: Participant) -> None:
        if target.media_task is not None and not target.media_task.done():
            with contextlib.suppress(Exception):
                await target.media_task  # leave only after join reached the media plane
        await self.media.leave(meeting_id, target.id)

    async def mute(
        self, meeting_id: uuid.UUID, sid: str, *, participant_id: str | None, changes: dict[str, bool]
    ) -> None:
        me = self.joined_participant(meeting_id, sid)
        target_id = participant_id
        if target_id and target_id != me.id:
            if not me.host:
                raise Forbidden("Only hosts can ask others to mute.")
            target = self.by_participant_id(meeting_id).get(target_id)
            if target is None:
                raise NotFound("participant")
            # A host may ask someone to turn things off, never on (no remote camera activation).
            request = {key: False for key, value in changes.items() if value is False and key in ("audio", "video")}
            await self.sio.emit("video:mute_request", {"meeting_id": str(meeting_id), **request}, to=target.sid)
            return
        for key, value in changes.items():
            setattr(me, key, value)
        await self._participants_changed(self.rooms[meeting_id])

    async def audio_only(self, meeting_id: uuid.UUID, sid: str, *, on: bool) -> None:
        me = await self._in_media(meeting_id, sid)
        await self.media.audio_only(meeting_id, me.id, on)

    async def answer(self, meeting_id: uuid.UUID, sid: str, *, sdp: str) -> None:
        me = self.joined_participant(meeting_id, sid)
        await self.media.answer(meeting_id, me.id, sdp)

    async def candidate(
        self, meeting_id: uuid.UUID, sid: str, *, candidate: str, sdp_mid: str | None, sdp_mline_index: int | None
    ) -> None:
        me = self.joined_participant(meeting_id, sid)
        await self.media.candidate(meeting_id, me.id, candidate, sdp_mid, sdp_mline_index)

    async def check_host(self, meeting_id: uuid.UUID, sid: str) -> None:
        self.host(meeting_id, sid)

    async def _in_media(self, meeting_id: uuid.UUID, sid: str) -> Participant:
        me = self.joined_participant(meeting_id, sid)
        if me.media_task is not None and not me.media_task.done():
            await me.media_task  # the relay must know the participant first
        return me

    async def end(self, meeting_id: uuid.UUID) -> None:
        await self._close(meeting_id, "video:ended")

    async def drop_guest(self, meeting_id: uuid.UUID, *, link_id: str) -> None:
        """A revoked guest link: remove that guest and close their connection."""
        link = uuid.UUID(link_id)
        for participant in list(self.by_participant_id(meeting_id).values()):
            if participant.guest and participant.subject == link:
                await self._drop(meeting_id, participant, "video:removed")
                await self.sio.disconnect(participant.sid)

    async def disconnected(self, meeting_id: uuid.UUID, sid: str) -> None:
        room = self.rooms.get(meeting_id)
        participant = room.of_sid(sid) if room else None
        if participant is not None:
            await self._drop(meeting_id, participant, None)

    async def abandon(self, meeting_id: uuid.UUID) -> None:
        """This node no longer owns the room (its lease was lost): everyone is told to join again, which
        reaches the new owner; the admissions stay in the database."""
        await self._close(meeting_id, "video:media_failed")

    async def _close(self, meeting_id: uuid.UUID, notice: str) -> None:
        async with self.lock:
            room = self.rooms.pop(meeting_id, None)
        if room is not None:
            for participant in room.participants.values():
                await self.sio.emit(notice, {"meeting_id": str(meeting_id)}, to=participant.sid)
                await self.sio.leave_room(participant.sid, joined_room(meeting_id))
                await self.sio.leave_room(participant.sid, hosts_room(meeting_id))
        await self.media.close_room(meeting_id)

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
