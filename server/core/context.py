"""Typed application state shared by transport handlers."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from aiohttp import web

from server.core.db import Database, utcnow
from server.settings import Settings

if TYPE_CHECKING:
    import socketio


@dataclass
class AppContext:
    settings: Settings
    db: Database
    sio: socketio.AsyncServer
    clock: Callable[[], datetime] = utcnow  # injectable so time-based rules are testable
    services: dict[str, Any] = field(default_factory=dict)  # domain services by name


CTX: web.AppKey[AppContext] = web.AppKey("brygga_ctx", AppContext)


def ctx_of(request: web.Request) -> AppContext:
    return request.app[CTX]
