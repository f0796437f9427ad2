"""socket.io transport: one AsyncServer, typed events with a uniform ack, per-connection principals.

Every client→server event is validated against a pydantic model and answered with
`{ok: true, ...}` or `{ok: false, error: {code, message}}`; a handler bug becomes an `internal`
error ack for that caller only, never a disconnect of anybody else.
"""

from __future__ import annotations

import contextlib
import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import engineio
import socketio
from pydantic import BaseModel, ValidationError

from server.core import sio_codec
from server.core.errors import Problem, validation_problem
from server.identity.principal import Principal

if TYPE_CHECKING:
    from server.core.context import AppContext
    from server.settings import Settings

log = logging.getLogger("brygga.realtime")

MAX_EVENT_BYTES = 64 * 1024  # attachments go over HTTP; events stay small

EventHandler = Callable[["AppContext", Principal, str, Any], Awaitable[dict[str, Any] | None]]


def user_room(user_id: uuid.UUID) -> str:
    return f"user:{user_id}"


def unit_room(unit_id: uuid.UUID) -> str:
    return f"unit:{unit_id}"


@dataclass
class EventSpec:
    name: str
    model: type[BaseModel] | None
    handler: EventHandler
    summary: str
    allow_guests: bool = False  # meeting guests may only use events that opt in


class EventRouter:
    """Collects socket.io events for one domain (documented in docs/realtime.md)."""

    def __init__(self) -> None:
        self.events: list[EventSpec] = []

    def on(
        self, name: str, model: type[BaseModel] | None, summary: str, *, allow_guests: bool = False
    ) -> Callable[[EventHandler], EventHandler]:
        def register(handler: EventHandler) -> EventHandler:
            self.events.append(EventSpec(name, model, handler, summary, allow_guests))
            return handler

        return register


class Connections:
    """Which principal is behind each socket on this node, and which sockets each user has."""

    def __init__(self) -> None:
        self.by_sid: dict[str, Principal] = {}
        self.sids_by_user: dict[uuid.UUID, set[str]] = {}

    def add(self, sid: str, principal: Principal) -> None:
        self.by_sid[sid] = principal
        self.sids_by_user.setdefault(principal.user_id, set()).add(sid)

    def remove(self, sid: str) -> Principal | None:
        principal = self.by_sid.pop(sid, None)
        if principal is not None:
            sids = self.sids_by_user.get(principal.user_id, set())
            sids.discard(sid)
            if not sids:
                self.sids_by_user.pop(principal.user_id, None)
        return principal

    def replace(self, sid: str, principal: Principal) -> None:
        if sid in self.by_sid:
            self.by_sid[sid] = principal

    def of_user(self, user_id: uuid.UUID) -> set[str]:
        return set(self.sids_by_user.get(user_id, ()))


class InlineFanout(socketio.AsyncManager):  # type: ignore[misc]
    """Room emits without a task per recipient.

    python-socketio's manager wraps each recipient's send in a task and waits for them all, so every
    emit costs two turns of the event loop. Under load a turn takes milliseconds, and with the Redis
    manager the listener relaying other nodes' emits handles one emit per two turns: a burst (say an
    inbox-count pass) queued the next `message:new` behind it, 35–58 ms send→deliver at 300 msg/s.
    Handing a packet to an engine.io socket only appends it to the socket's unbounded send queue
    (its writer task does the I/O), so doing that inline does not wait.
    """

    async def emit(
        self,
        event: str,
        data: Any,
        namespace: str,
        room: str | list[str] | None = None,
        skip_sid: str | list[str] | None = None,
        callback: Callable[..., Any] | None = None,
        to: str | list[str] | None = None,
        **kwargs: Any,
    ) -> None:
        if callback is not None or namespace not in self.rooms:  # acks need per-recipient packets
            await super().emit(event, data, namespace, room=room, skip_sid=skip_sid, callback=callback, to=to)
            return
        args = list(data) if isinstance(data, tuple) else [] if data is None else [data]
        skip = set(skip_sid) if isinstance(skip_sid, list) else {skip_sid}
        encoded = self.server.packet_class(socketio.packet.EVENT, namespace=namespace, data=[event, *args]).encode()
        packets = [
            engineio.packet.Packet(engineio.packet.MESSAGE, part)
            for part in (encoded if isinstance(encoded, list) else [encoded])
        ]
        # Listed first: a send may close a timed-out socket, which changes the room while iterating.
        targets = [eio_sid for sid, eio_sid in self.get_participants(namespace, to or room) if sid not in skip]
        for eio_sid in targets:
            for packet in packets:
                # A socket that disconnected meanwhile gets it by `sync` when it reconnects.
                with contextlib.suppress(engineio.exceptions.SocketIsClosedError):
                    await self.server._send_eio_packet(eio_sid, packet)


class RedisInlineFanout(socketio.AsyncRedisManager, InlineFanout):  # type: ignore[misc]
    """The Redis manager (emits reach every node) with `InlineFanout` for each node's own sockets."""


def create_sio(settings: Settings) -> socketio.AsyncServer:
    manager: InlineFanout = InlineFanout()
    if settings.redis_url:
        # JSON-only pub/sub across nodes; never expose this Redis (CVE-2025-61765 was pickle here).
        # Revocations reach other nodes through the identity change feed, not through this channel.
        manager = RedisInlineFanout(settings.redis_url)
    return socketio.AsyncServer(
        async_mode="aiohttp",
        cors_allowed_origins=settings.origins,
        max_http_buffer_size=MAX_EVENT_BYTES,
        client_manager=manager,
        serializer=sio_codec.SioPacket,
        json=sio_codec,
        logger=False,
        engineio_logger=False,
        ping_interval=20,
        ping_timeout=20,
    )


def ok(**payload: Any) -> dict[str, Any]:
    return {"ok": True, **payload}


async def dispatch(ctx: AppContext, spec: EventSpec, sid: str, data: Any) -> dict[str, Any]:
    connections: Connections = ctx.services["connections"]
    principal = connections.by_sid.get(sid)
    if principal is None:
        return Problem("unauthorized", "This connection is not authenticated; reconnect.").to_ack()
    if principal.is_guest and not spec.allow_guests:
        return Problem("forbidden", "Meeting guests can only use the meeting.").to_ack()
    try:
        payload: Any = data
        if spec.model is not None:
            if not isinstance(data, dict):
                raise Problem("invalid_payload", f"'{spec.name}' takes a JSON object.")
            try:
                payload = spec.model.model_validate(data)
            except ValidationError as exc:
                raise validation_problem(exc.errors(), f"'{spec.name}' payload") from None
        result = await spec.handler(ctx, principal, sid, payload)
        return ok(**(result or {}))
    except Problem as problem:
        return problem.to_ack()
    except Exception:
        log.exception("event handler failed", extra={"event": spec.name})
        return Problem("internal", "Something went wrong on the server; try again.").to_ack()


def install_events(ctx: AppContext, routers: list[EventRouter]) -> None:
    sio = ctx.sio
    known: dict[str, EventSpec] = {}
    for router in routers:
        for spec in router.events:
            known[spec.name] = spec

    def bind(spec: EventSpec) -> None:
        async def handler(sid: str, data: Any = None) -> dict[str, Any]:
            return await dispatch(ctx, spec, sid, data)

        sio.on(spec.name, handler)

    for spec in known.values():
        bind(spec)

    async def unknown_event(event: str, sid: str, *_args: Any) -> dict[str, Any]:
        return Problem("unknown_event", f"There is no event '{event[:40]}'. See docs/realtime.md.").to_ack()

    sio.on("*", unknown_event)
