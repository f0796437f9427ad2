"""Which node runs a live meeting, and how every socket's `video:*` command reaches it.

- **Owner**: each live meeting has one owner node, holding the database lease `video-room:<id>`
  (server/core/leases.py) while anyone is in the room; it keeps the room (`Rooms`) and runs the
  relay. It renews its leases every second; a node that cannot renew one abandons that room (its
  participants are told to join again).
- **Forwarding**: a socket may be on any node. Its node sends the operation over Redis to the owner
  (a request on the owner's channel `brygga:video:node:<node id>`, the reply on its own channel).
  The owner's emits and socket.io room changes reach sockets on every node through the socket.io
  Redis manager.
- **Placement**: a meeting nobody owns goes to the least-loaded node. Every node announces its
  relay load (participants in its rooms) and capacity (`BRYGGA_VIDEO_RELAY_CAPACITY`) once a second
  in the Redis hash `brygga:video:nodes`; a node with capacity 0 never runs rooms.
- **Failover**: a dead node stops listening on its channel (Redis drops its connection), so a
  PUBLISH to it reaches nobody. A forwarded command that reaches nobody breaks the dead owner's
  lease at once, and the command goes to a new owner. Every node checks once a second that the
  owners of its sockets' meetings still listen, and tells those sockets to join again
  (`video:media_failed`). Admissions and the waiting room are in the database, so a guest let in
  before is let in again and a waiting guest waits on.

Without Redis (a single node) every operation runs locally.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid
from collections.abc import Iterator
from typing import Any

from redis import asyncio as aioredis

from server.core import leases
from server.core.context import Key
from server.core.db import Database
from server.core.errors import Problem
from server.video.media import MediaUnavailable
from server.video.rooms import Emitter, Rooms, hosts_room, joined_room

log = logging.getLogger("brygga.video.cluster")

NODES_KEY = "brygga:video:nodes"
CHANNEL = "brygga:video:node:"
TICK = 1.0  # seconds between lease renewals, load announcements and owner checks
ANNOUNCE_FRESH = 3.0  # a node whose announcement is older is not given new rooms
FORWARD_TIMEOUT = 30.0  # a join may start a relay process on the owner
ATTEMPTS = 4
# What a socket's node may ask the owner to do (Rooms methods taking (meeting_id, [sid,] **args)).
OPERATIONS = frozenset(
    {
        "join",
        "answer",
        "candidate",
        "admit",
        "remove",
        "leave",
        "mute",
        "audio_only",
        "check_host",
        "end",
        "drop_guest",
        "disconnected",
    }
)
NO_ROOM_IS_FINE = frozenset({"end", "drop_guest", "disconnected", "leave"})


class Moved(Exception):
    """This node does not own the room (any more); ask who does."""


class OwnerGone(Exception):
    """Nobody listens on the owner's channel: the node is dead."""


def lease_name(meeting_id: uuid.UUID) -> str:
    return f"video-room:{meeting_id}"


@contextlib.contextmanager
def media_errors() -> Iterator[None]:
    try:
        yield
    except (MediaUnavailable, TimeoutError):
        raise Problem("media_unavailable", "The meeting's media connection was lost; join again.", status=503) from None


class Directory:
    def __init__(
        self,
        rooms: Rooms,
        sio: Emitter,
        db: Database,
        node: str,
        *,
        redis_url: str | None,
        lease_seconds: float,
        capacity: int,
    ) -> None:
        self.rooms = rooms
        self.sio = sio
        self.db = db
        self.node = node
        self.redis: aioredis.Redis | None = aioredis.Redis.from_url(redis_url) if redis_url else None
        self.lease_seconds = lease_seconds
        self.capacity = capacity
        self.owned: dict[uuid.UUID, float] = {}  # meeting -> when this node took it (monotonic)
        self.members: dict[uuid.UUID, dict[str, str]] = {}  # this node's sockets: meeting -> sid -> owner
        self.pending: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self.tasks: set[asyncio.Future[Any]] = set()
        self.runner: asyncio.Task[None] | None = None
        self.ready = asyncio.Event()

    @property
    def channel(self) -> str:
        return CHANNEL + self.node

    # commands -----------------------------------------------------------------------------------

    async def call(self, meeting_id: uuid.UUID, op: str, sid: str | None = None, **args: Any) -> Any:
        """Run a room operation on the meeting's owner node (here, or forwarded) and return its result."""
        if self.redis is None:
            result = await self._local(meeting_id, op, sid, args)
            self._track(meeting_id, op, sid, self.node)
            return result
        # Where this socket's join went (saves a lease lookup per trickled candidate); checked below.
        known = self.members.get(meeting_id, {}).get(sid or "") if op != "join" else None
        for _ in range(ATTEMPTS):
            owner, known = known or await self._owner(meeting_id, create=op == "join"), None
            if owner is None:
                if op in NO_ROOM_IS_FINE:
                    return None
                raise Problem("not_in_meeting", "Join the meeting first (video:join).", status=409)
            try:
                if owner == self.node:
                    result = await self._local(meeting_id, op, sid, args)
                else:
                    result = await self._forward(owner, meeting_id, op, sid, args)
            except Moved:
                continue
            except OwnerGone:
                log.warning("room owner gone; taking the room over", extra={"meeting": str(meeting_id)})
                await leases.release(self.db, lease_name(meeting_id), owner)
                await self.redis.hdel(NODES_KEY, owner)
                continue
            self._track(meeting_id, op, sid, owner)
            return result
        raise Problem("media_unavailable", "The meeting could not be reached; join again.", status=503)

    def _track(self, meeting_id: uuid.UUID, op: str, sid: str | None, owner: str) -> None:
        if sid is None:
            return
        if op == "join":
            self.members.setdefault(meeting_id, {})[sid] = owner
        elif op in ("leave", "disconnected"):
            sids = self.members.get(meeting_id, {})
            sids.pop(sid, None)
            if not sids:
                self.members.pop(meeting_id, None)

    async def _local(self, meeting_id: uuid.UUID, op: str, sid: str | None, args: dict[str, Any]) -> Any:
        if op not in OPERATIONS:
            raise ValueError(op)
        if self.redis is not None and meeting_id not in self.owned:
            if not await leases.acquire(self.db, lease_name(meeting_id), self.node, self.lease_seconds):
                raise Moved
            self.owned[meeting_id] = time.monotonic()
            log.info("room taken", extra={"meeting": str(meeting_id), "node": self.node})
        method = getattr(self.rooms, op)
        with media_errors():
            return await (method(meeting_id, sid, **args) if sid is not None else method(meeting_id, **args))

    async def _owner(self, meeting_id: uuid.UUID, *, create: bool) -> str | None:
        if meeting_id in self.owned:
            return self.node
        held = await leases.holder(self.db, lease_name(meeting_id))
        if held is not None:
            return held.owner
        return await self._place() if create else None

    async def _place(self) -> str:
        """The least-loaded node with room to spare (this one on a tie or when nobody announced)."""
        assert self.redis is not None
        now = time.time()
        best, best_load = self.node, float("inf")
        for node, raw in (await self.redis.hgetall(NODES_KEY)).items():
            info = json.loads(raw)
            if info["at"] < now - ANNOUNCE_FRESH or info["participants"] >= info["capacity"]:
                continue
            load = info["participants"] / info["capacity"]
            name = node.decode() if isinstance(node, bytes) else node
            if load < best_load or (load == best_load and name == self.node):
                best, best_load = name, load
        return best

    async def _forward(self, owner: str, meeting_id: uuid.UUID, op: str, sid: str | None, args: dict[str, Any]) -> Any:
        assert self.redis is not None
        request_id = uuid.uuid4().hex
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self.pending[request_id] = future
        request = {
            "id": request_id,
            "reply": self.channel,
            "op": op,
            "meeting_id": str(meeting_id),
            "sid": sid,
            "args": args,
        }
        try:
            if not await self.redis.publish(CHANNEL + owner, json.dumps(request)):
                raise OwnerGone
            reply = await asyncio.wait_for(future, FORWARD_TIMEOUT)
        except TimeoutError:
            raise Problem("media_unavailable", "The meeting's server did not answer; join again.", status=503) from None
        finally:
            self.pending.pop(request_id, None)
        if reply.get("moved"):
            raise Moved
        if "problem" in reply:
            problem = reply["problem"]
            raise Problem(problem["code"], problem["detail"], status=problem["status"])
        return reply.get("result")

    async def _serve(self, request: dict[str, Any]) -> None:
        """Run a forwarded operation for a socket on another node and publish the reply."""
        assert self.redis is not None
        reply: dict[str, Any] = {"id": request["id"]}
        try:
            reply["result"] = await self._local(
                uuid.UUID(request["meeting_id"]), request["op"], request["sid"], request["args"]
            )
        except Moved:
            reply["moved"] = True
        except Problem as problem:
            reply["problem"] = {"code": problem.code, "detail": problem.detail, "status": problem.status}
        except Exception:
            log.exception("forwarded video operation failed", extra={"op": request.get("op")})
            reply["problem"] = {
                "code": "internal",
                "detail": "Something went wrong on the server; try again.",
                "status": 500,
            }
        await self.redis.publish(request["reply"], json.dumps(reply))

    # socket lifecycle ---------------------------------------------------------------------------

    async def disconnected(self, sid: str) -> None:
        for meeting_id, sids in list(self.members.items()):
            if sid in sids:
                with contextlib.suppress(Problem):
                    await self.call(meeting_id, "disconnected", sid)

    # background ---------------------------------------------------------------------------------

    async def start(self) -> None:
        if self.redis is None:
            return
        pubsub = self.redis.pubsub()
        await pubsub.subscribe(self.channel)
        self.runner = asyncio.ensure_future(self._run(pubsub))

    async def _run(self, pubsub: Any) -> None:
        listener = asyncio.ensure_future(self._listen(pubsub))
        try:
            while True:
                with contextlib.suppress(Exception):
                    await self._tick()
                self.ready.set()
                await asyncio.sleep(TICK)
        finally:
            listener.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await listener
            await pubsub.aclose()

    async def _listen(self, pubsub: Any) -> None:
        async for message in pubsub.listen():
            if message.get("type") != "message":
                continue
            data = json.loads(message["data"])
            if "op" in data:
                task = asyncio.ensure_future(self._serve(data))
                self.tasks.add(task)
                task.add_done_callback(self.tasks.discard)
            else:
                future = self.pending.get(data["id"])
                if future is not None and not future.done():
                    future.set_result(data)

    async def _tick(self) -> None:
        assert self.redis is not None
        now = time.monotonic()
        for meeting_id, taken in list(self.owned.items()):
            if meeting_id not in self.rooms.rooms and now - taken > self.lease_seconds:
                del self.owned[meeting_id]  # nobody left: let the next join place the room anew
                await leases.release(self.db, lease_name(meeting_id), self.node)
            elif not await leases.renew(self.db, lease_name(meeting_id), self.node, self.lease_seconds):
                del self.owned[meeting_id]
                log.warning("room lease lost", extra={"meeting": str(meeting_id)})
                await self.rooms.abandon(meeting_id)
        participants = sum(len(room.joined()) for room in self.rooms.rooms.values())
        announcement = {
            "participants": participants,
            "rooms": len(self.rooms.rooms),
            "capacity": self.capacity,
            "at": time.time(),
        }
        if self.capacity > 0:
            await self.redis.hset(NODES_KEY, self.node, json.dumps(announcement))
        await self._check_owners()

    async def _check_owners(self) -> None:
        """Tell this node's sockets to join again when their meeting's owner node has died."""
        assert self.redis is not None
        for meeting_id, sids in list(self.members.items()):
            gone = {owner for owner in set(sids.values()) if owner != self.node}
            if not gone:
                continue
            counts = dict(await self.redis.pubsub_numsub(*(CHANNEL + owner for owner in gone)))
            for sid, owner in list(sids.items()):
                # A socket that joined again after the takeover is in this node's room: leave it be.
                if owner == self.node or counts.get((CHANNEL + owner).encode(), 0):
                    continue
                del sids[sid]
                await self.sio.leave_room(sid, joined_room(meeting_id))
                await self.sio.leave_room(sid, hosts_room(meeting_id))
                await self.sio.emit("video:media_failed", {"meeting_id": str(meeting_id)}, to=sid)
            if not sids:
                self.members.pop(meeting_id, None)

    async def close(self) -> None:
        if self.runner is not None:
            self.runner.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self.runner
        if self.redis is not None:
            with contextlib.suppress(Exception):
                await self.redis.hdel(NODES_KEY, self.node)
            for meeting_id in list(self.owned):  # participants join again on another node
                with contextlib.suppress(Exception):
                    await self.rooms.abandon(meeting_id)
                    await leases.release(self.db, lease_name(meeting_id), self.node)
            await self.redis.aclose()


ROOM_DIRECTORY: Key[Directory] = Key("video.directory")  # the video plugin keeps this node's directory here
