"""socket.io connect/disconnect: authenticate, remember the principal, join user and unit rooms."""

from __future__ import annotations

import logging
from typing import Any

import socketio

from server.core.context import AppContext
from server.core.realtime import Connections, unit_room, user_room
from server.identity.authn import authenticate_socket, refuse
from server.identity.principal import Principal

log = logging.getLogger("brygga.realtime")


def install_connection_handlers(ctx: AppContext) -> Connections:
    connections = Connections()
    ctx.services["connections"] = connections
    sio = ctx.sio

    async def connect(sid: str, environ: dict[str, Any], auth: Any = None) -> None:
        try:
            principal = await authenticate_socket(ctx, environ, auth)
        except socketio.exceptions.ConnectionRefusedError:
            raise
        except Exception:
            # e.g. database pool exhausted or SQLite locked during a reconnect storm: answer with a clear,
            # retryable refusal instead of leaving the client waiting for a connect reply forever.
            log.exception("socket authentication failed")
            raise refuse("unavailable", "The server is busy; reconnect in a moment.") from None
        connections.add(sid, principal)
        await sio.enter_room(sid, user_room(principal.user_id))
        for unit_id in principal.unit_ids:
            await sio.enter_room(sid, unit_room(unit_id))

    async def disconnect(sid: str, *_reason: Any) -> None:
        connections.remove(sid)

    sio.on("connect", connect)
    sio.on("disconnect", disconnect)
    return connections


async def apply_principal_change(ctx: AppContext, principal: Principal) -> None:
    """Make a permission change take effect at once on this node's open sockets of that user."""
    connections: Connections = ctx.services["connections"]
    for sid in connections.of_user(principal.user_id):
        old = connections.by_sid.get(sid)
        if old is None:
            continue
        for unit_id in old.unit_ids - principal.unit_ids:
            await ctx.sio.leave_room(sid, unit_room(unit_id))
        for unit_id in principal.unit_ids - old.unit_ids:
            await ctx.sio.enter_room(sid, unit_room(unit_id))
        connections.replace(sid, principal)


async def disconnect_user(ctx: AppContext, principal_user_id: Any) -> int:
    """Drop every socket of a user on this node (logout, disable); returns how many."""
    connections: Connections = ctx.services["connections"]
    sids = connections.of_user(principal_user_id)
    for sid in sids:
        await ctx.sio.disconnect(sid)
    return len(sids)
