"""Cross-node socket control through python-socketio's Redis manager.

Revoking a token or session, or disabling a user, on one node must drop that user's sockets on every
node (ASVS 7.4.1, 8.3.2). python-socketio only knows the participants of a room on the local node, so
the revoking node emits a server-internal event to the room `user:<id>` through the manager; every
node's `ClusterRedisManager` intercepts that event before it reaches any client and disconnects its
own participants of the room. Clients can never trigger it: client events go to handlers, never
through `manager.emit`. The channel carries JSON only (no pickle), and Redis must stay private.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

import socketio

from server.core.realtime import user_room

log = logging.getLogger("brygga.cluster")

DISCONNECT_USER = "brygga:internal:disconnect-user"  # never delivered to clients
NAMESPACE = "/"


async def _drop_room_locally(server: Any, manager: Any, room: str) -> int:
    sids = [sid for sid, _eio_sid in manager.get_participants(NAMESPACE, room)]
    for sid in sids:
        await server.disconnect(sid, namespace=NAMESPACE, ignore_queue=True)
    return len(sids)


class ClusterRedisManager(socketio.AsyncRedisManager):  # type: ignore[misc]
    """The Redis client manager plus the internal 'disconnect this user's sockets' broadcast."""

    async def _handle_emit(self, message: dict[str, Any]) -> None:
        if message.get("event") == DISCONNECT_USER:
            room = message.get("room")
            if self.server is not None and isinstance(room, str) and room.startswith("user:"):
                dropped = await _drop_room_locally(self.server, self, room)
                if dropped:
                    log.info("sockets dropped after revocation", extra={"count": dropped})
            return
        await super()._handle_emit(message)


async def disconnect_user_everywhere(sio: socketio.AsyncServer, user_id: uuid.UUID) -> None:
    """Drop every socket of `user_id` on all nodes (on this node at once, elsewhere via Redis)."""
    if isinstance(sio.manager, ClusterRedisManager):
        await sio.manager.emit(DISCONNECT_USER, {}, namespace=NAMESPACE, room=user_room(user_id))
    else:
        await _drop_room_locally(sio, sio.manager, user_room(user_id))


async def publish_disconnect_user(redis_url: str, user_id: uuid.UUID) -> None:
    """The same broadcast from a process without a socket.io server (the `brygga` CLI)."""
    manager = ClusterRedisManager(redis_url, write_only=True)
    try:
        await manager.emit(DISCONNECT_USER, {}, namespace=NAMESPACE, room=user_room(user_id))
    finally:
        if manager.redis is not None:
            await manager.redis.aclose()
