"""Typed application state shared by transport handlers: the app's wiring in one place.

Fields are the seams between parts of the app, typed with protocols from `server/core` (a domain
depends on `ctx.calendar` or `ctx.conversations`, never on the domain that provides them). Objects a
domain keeps for its own routes and events sit under a `Key[T]` that domain defines, read with
`ctx.need(KEY)`: typed, and another domain reading them has to import the owner, so the dependency
shows in the import graph.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from aiohttp import web

from server.core.calendar import AlwaysOpen, UnitCalendar
from server.core.connections import Connections
from server.core.conversations import ConversationGate
from server.core.db import Database, utcnow
from server.core.deadlines import DeadlineEngine
from server.core.errors import Problem
from server.core.principal import Principal
from server.core.ratelimit import RateLimiter
from server.settings import Settings

if TYPE_CHECKING:
    import socketio

T = TypeVar("T")

# (ctx, secret) -> the principal behind a session cookie or a guest token, or None.
PrincipalResolver = Callable[["AppContext", str], Awaitable[Principal | None]]
# Called with the sid of every socket that disconnects from this node.
DisconnectHook = Callable[[str], Awaitable[None]]


class Key(Generic[T]):
    """Names an object one domain keeps on the context for its own use (e.g. video's rooms)."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"Key({self.name!r})"


@dataclass
class AppContext:
    settings: Settings
    db: Database
    sio: socketio.AsyncServer
    clock: Callable[[], datetime] = utcnow  # injectable so time-based rules are testable
    # This app's owner id for leases: host, pid and a random suffix.
    node_id: str = field(default_factory=lambda: f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}")
    # This node's sockets and their principals (identity fills it on connect).
    connections: Connections = field(default_factory=Connections)
    # Chosen by the app before any domain starts (Redis when configured); a limiter set earlier is kept.
    ratelimiter: RateLimiter | None = None
    # Browser session cookie -> principal (identity); meeting guest token -> principal (video).
    session_resolver: PrincipalResolver | None = None
    guest_resolver: PrincipalResolver | None = None
    # Domains clean up per-socket state here (video leaves its rooms).
    disconnect_hooks: list[DisconnectHook] = field(default_factory=list)
    # When a unit is staffed (directory); None: always open. A calendar set before start is kept.
    calendar: UnitCalendar | None = None
    # Per-conversation authorisation for other domains (messaging).
    conversations: ConversationGate | None = None
    # Durable timers of every domain (core/deadlines.py); its loop runs while the app does.
    deadlines: DeadlineEngine = field(init=False, repr=False)
    _own: dict[Key[Any], Any] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self.deadlines = DeadlineEngine(
            self.db, clock=lambda: self.clock(), calendar=lambda: self.calendar or AlwaysOpen()
        )

    @property
    def limiter(self) -> RateLimiter:
        if self.ratelimiter is None:
            raise RuntimeError("the rate limiter is not running")
        return self.ratelimiter

    def conversation_gate(self) -> ConversationGate:
        if self.conversations is None:
            raise Problem("unavailable", "Messaging is starting; try again in a moment.", status=503)
        return self.conversations

    def provide(self, key: Key[T], value: T) -> None:
        self._own[key] = value

    def find(self, key: Key[T]) -> T | None:
        found: T | None = self._own.get(key)
        return found

    def need(self, key: Key[T]) -> T:
        found = self.find(key)
        if found is None:
            raise RuntimeError(f"{key.name} is not running")
        return found


CTX: web.AppKey[AppContext] = web.AppKey("brygga_ctx", AppContext)


def ctx_of(request: web.Request) -> AppContext:
    return request.app[CTX]
