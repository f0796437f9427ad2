"""socket.io transport: one AsyncServer, typed events with a uniform ack, per-connection principals.

Every client→server event is validated against a pydantic model and answered with
`{ok: true, ...}` or `{ok: false, error: {code, message}}`; a handler bug becomes an `internal`
error ack for that caller only, never a disconnect of anybody else.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import engineio
import engineio.async_drivers.aiohttp
import socketio
from pydantic import BaseModel, ValidationError

from server.core import sio_codec
from server.core.api import control_characters_problem, has_control_characters
from server.core.errors import Problem, validation_problem
from server.core.principal import Principal

if TYPE_CHECKING:
    from server.core.context import AppContext
    from server.settings import Settings

log = logging.getLogger("brygga.realtime")

MAX_EVENT_BYTES = 64 * 1024  # attachments go over HTTP; events stay small

EventHandler = Callable[["AppContext", Principal, str, Any], Awaitable[dict[str, Any] | None]]
NodeHandler = Callable[[dict[str, Any]], Awaitable[None]]

# Messages between server nodes ride on socket.io's fan-out (Redis pub/sub across nodes) in a namespace no
# client connects to: every node, the sending one included, runs the handlers registered for the topic.
NODE_NAMESPACE = "/brygga-nodes"
NODES_RESYNC = "nodes:resync"  # run on a node whose Redis fan-out came back: it may have missed node messages


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


class InlineFanout(socketio.AsyncManager):  # type: ignore[misc]
    """Room emits without a task per recipient.

    python-socketio's manager wraps each recipient's send in a task and waits for them all, so every
    emit costs two turns of the event loop. Under load a turn takes milliseconds, and with the Redis
    manager the listener relaying other nodes' emits handles one emit per two turns: a burst (say an
    inbox-count pass) queued the next `message:new` behind it, 35–58 ms send→deliver at 300 msg/s.
    Handing a packet to an engine.io socket only appends it to the socket's unbounded send queue
    (its writer task does the I/O), so doing that inline does not wait.

    Emits to `NODE_NAMESPACE` are node messages (`tell_nodes`): they run this node's handlers instead.
    """

    def on_node_message(self, topic: str, handler: NodeHandler) -> None:
        handlers: dict[str, list[NodeHandler]] = self.__dict__.setdefault("_node_handlers", {})
        handlers.setdefault(topic, []).append(handler)

    async def node_message(self, topic: str, data: Any) -> None:
        for handler in self.__dict__.get("_node_handlers", {}).get(topic, []):
            try:
                await handler(data if isinstance(data, dict) else {})
            except Exception:
                log.exception("node message handler failed", extra={"topic": topic})

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
        if namespace == NODE_NAMESPACE:
            await self.node_message(event, data)
            return
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


REDIS_RETRY_SECONDS = 0.5  # while Redis is away, how often the pub/sub listener tries to subscribe again


class RedisInlineFanout(socketio.AsyncRedisManager, InlineFanout):  # type: ignore[misc]
    """The Redis manager (emits reach every node) with `InlineFanout` for each node's own sockets.

    python-socketio's listener backs off up to 60 s while Redis is away, so live delivery across nodes
    stayed off for up to a minute after Redis was back while clients looked online. This one retries
    every `REDIS_RETRY_SECONDS`, logs the outage and the recovery once each, and on recovery sends this
    node's sockets `sync:needed`: whatever other nodes emitted meanwhile never reached them live.
    """

    async def _redis_listen_with_retries(self) -> AsyncIterator[Any]:
        interrupted = False
        while True:
            try:
                self._redis_connect()
                await self.pubsub.subscribe(self.channel)
                if interrupted:
                    interrupted = False
                    log.warning("redis fan-out restored; clients on this node are told to sync")
                    await self.node_message(NODES_RESYNC, {})
                    await self.emit("sync:needed", {}, namespace="/", ignore_queue=True)
                async for message in self.pubsub.listen():
                    yield message
            except Exception as exc:  # redis-py's connection and timeout errors
                if not interrupted:
                    interrupted = True
                    log.warning(
                        "redis fan-out interrupted; live events from other nodes are off until it returns",
                        extra={"error": type(exc).__name__},
                    )
                await asyncio.sleep(REDIS_RETRY_SECONDS)


ENGINEIO_TEXT_TYPES = frozenset("0123456b")  # open, close, ping, pong, message, upgrade, noop; "b" = base64


class GuardedWebSocket(engineio.async_drivers.aiohttp.WebSocket):  # type: ignore[misc]
    """engine.io's websocket with each incoming text frame checked before engine.io decodes it.

    An empty frame or an unknown packet type made engine.io raise outside its error handling (a
    traceback, and for an empty frame a 500 for the whole socket). Such a frame now ends that
    connection as if the client had closed it, with one log line.
    """

    async def wait(self) -> str | bytes:
        data: str | bytes = await super().wait()
        if isinstance(data, str) and (not data or data[0] not in ENGINEIO_TEXT_TYPES):
            log.warning("malformed engine.io packet refused", extra={"bytes": len(data)})
            raise OSError("malformed engine.io packet")
        return data


class GuardedEngineIO(engineio.AsyncServer):  # type: ignore[misc]
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        drivers: dict[str, Any] = self._async  # type: ignore[has-type]
        self._async = {**drivers, "websocket": GuardedWebSocket}


class GuardedServer(socketio.AsyncServer):  # type: ignore[misc]
    """python-socketio with malformed socket.io packets refused: the sender is disconnected, and one
    log line without a traceback is written (python-socketio logged a traceback and went on)."""

    def _engineio_server_class(self) -> type[engineio.AsyncServer]:
        return GuardedEngineIO

    async def _handle_eio_message(self, eio_sid: str, data: str | bytes) -> None:
        try:
            await super()._handle_eio_message(eio_sid, data)
        except (ValueError, TypeError, IndexError, KeyError, AttributeError, RecursionError) as exc:
            # Event handlers catch their own errors (`dispatch`), so what reaches here is the packet's decoding.
            self._binary_packet.pop(eio_sid, None)
            log.warning("malformed socket.io packet refused", extra={"error": type(exc).__name__})
            await self.eio.disconnect(eio_sid)


def create_sio(settings: Settings) -> socketio.AsyncServer:
    manager: InlineFanout = InlineFanout()
    if settings.redis_url:
        # JSON-only pub/sub across nodes; never expose this Redis (CVE-2025-61765 was pickle here).
        # Revocations reach other nodes through the identity change feed, not through this channel.
        manager = RedisInlineFanout(settings.redis_url)
    return GuardedServer(
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


async def tell_nodes(sio: socketio.AsyncServer, topic: str, data: dict[str, Any]) -> None:
    """Run `topic`'s node handlers on every node (this one at once; the others through Redis, if any).

    Fire and forget like any emit: a node that misses one while Redis is away runs its `NODES_RESYNC`
    handlers when the fan-out returns, so caches kept on a node must start over there."""
    await sio.emit(topic, data, namespace=NODE_NAMESPACE)


def on_node_message(sio: socketio.AsyncServer, topic: str, handler: NodeHandler) -> None:
    """Register `handler` for the node messages of `topic` on this node (see `tell_nodes`)."""
    manager = sio.manager
    if isinstance(manager, InlineFanout):
        manager.on_node_message(topic, handler)


def ok(**payload: Any) -> dict[str, Any]:
    return {"ok": True, **payload}


async def dispatch(ctx: AppContext, spec: EventSpec, sid: str, data: Any) -> dict[str, Any]:
    principal = ctx.connections.by_sid.get(sid)
    if principal is None:
        return Problem("unauthorized", "This connection is not authenticated; reconnect.").to_ack()
    if principal.is_guest and not spec.allow_guests:
        return Problem("forbidden", "Meeting guests can only use the meeting.").to_ack()
    try:
        payload: Any = data
        if spec.model is not None:
            if not isinstance(data, dict):
                raise Problem("invalid_payload", f"'{spec.name}' takes a JSON object.")
            if has_control_characters(data):
                raise control_characters_problem(f"'{spec.name}' payload")
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
