"""socket.io connect/disconnect: authenticate, remember the principal, join user and unit rooms."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import timedelta
from typing import Any

import socketio

from server.core.background import running
from server.core.connections import Connections
from server.core.context import AppContext
from server.core.principal import Principal
from server.core.realtime import unit_room, user_room
from server.identity import sessions
from server.identity.accounts import Accounts
from server.identity.authn import authenticate_socket, refused

log = logging.getLogger("brygga.realtime")


def install_connection_handlers(ctx: AppContext) -> Connections:
    connections = ctx.connections
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
            raise refused("unavailable", "The server is busy; reconnect in a moment.") from None
        connections.add(sid, principal)
        await sio.enter_room(sid, user_room(principal.user_id))
        for unit_id in principal.unit_ids:
            await sio.enter_room(sid, unit_room(unit_id))

    async def disconnect(sid: str, *_reason: Any) -> None:
        connections.remove(sid)
        for hook in ctx.disconnect_hooks:  # domains clean up per-socket state
            try:
                await hook(sid)
            except Exception:
                log.exception("disconnect hook failed")

    sio.on("connect", connect)
    sio.on("disconnect", disconnect)
    return connections


async def apply_principal_change(ctx: AppContext, principal: Principal) -> None:
    """Make a permission change take effect at once on this node's open sockets of that user."""
    connections = ctx.connections
    for sid in connections.of_user(principal.user_id):
        old = connections.by_sid.get(sid)
        if old is None:
            continue
        for unit_id in old.unit_ids - principal.unit_ids:
            await ctx.sio.leave_room(sid, unit_room(unit_id))
        for unit_id in principal.unit_ids - old.unit_ids:
            await ctx.sio.enter_room(sid, unit_room(unit_id))
        # Roles change; how this connection authenticated (session, acr) does not.
        connections.replace(
            sid,
            replace(
                principal,
                auth_method=old.auth_method,
                acr=old.acr,
                session_id=old.session_id,
                csrf_token=old.csrf_token,
                issuer=old.issuer,
                token_id=old.token_id,
            ),
        )


async def disconnect_user(ctx: AppContext, principal_user_id: Any) -> int:
    """Drop every socket of a user on this node (logout, disable); returns how many."""
    connections = ctx.connections
    sids = connections.of_user(principal_user_id)
    for sid in sids:
        await ctx.sio.disconnect(sid)
    return len(sids)


async def disconnect_session(ctx: AppContext, user_id: uuid.UUID, session_hash: str) -> int:
    """Drop the sockets that authenticated with one browser session."""
    connections = ctx.connections
    sids = [sid for sid in connections.of_user(user_id) if connections.by_sid[sid].session_id == session_hash]
    for sid in sids:
        await ctx.sio.disconnect(sid)
    return len(sids)


async def refresh_user(ctx: AppContext, user_id: uuid.UUID) -> None:
    """Re-read a user's roles and apply them to this node's open sockets (or drop them if disabled)."""
    connections = ctx.connections
    if not connections.of_user(user_id):
        return
    token_ids = {connections.by_sid[sid].token_id for sid in connections.of_user(user_id)}
    principal, dead_tokens = await Accounts.of(ctx).current_principal(user_id, token_ids)
    if principal is None:
        await disconnect_user(ctx, user_id)
        return
    for sid in connections.of_user(user_id):  # sockets whose token was revoked or expired
        if connections.by_sid[sid].token_id in dead_tokens:
            await ctx.sio.disconnect(sid)
    await apply_principal_change(ctx, principal)


CHANGE_POLL_SECONDS = 0.5
CHANGE_RETENTION = timedelta(hours=1)
SESSION_SWEEP_ROUNDS = 60  # every 30 s: drop sockets whose browser session timed out


async def drop_expired_session_sockets(ctx: AppContext) -> int:
    """Sockets opened with a browser session that has since hit its idle or absolute timeout."""
    connections = ctx.connections
    by_session = {
        principal.session_id: (sid, principal.user_id)
        for sid, principal in list(connections.by_sid.items())
        if principal.session_id
    }
    if not by_session:
        return 0
    timeouts = sessions.Timeouts.of(ctx.settings)
    live = await Accounts.of(ctx).live_sessions(list(by_session), timeouts)
    dropped = 0
    for session_hash, (sid, _user_id) in by_session.items():
        if session_hash not in live:
            await ctx.sio.disconnect(sid)
            dropped += 1
    return dropped


async def follow_changes(ctx: AppContext) -> AsyncIterator[None]:
    """Lifecycle: poll the identity change feed so every node applies permission changes and logouts
    (made by any node or by the CLI) to its open sockets within about a second."""
    accounts = Accounts.of(ctx)
    last = await accounts.last_change()

    async def loop() -> None:
        nonlocal last
        rounds = 0
        while True:
            await asyncio.sleep(CHANGE_POLL_SECONDS)
            try:
                purge = sessions.Timeouts.of(ctx.settings) if (rounds + 1) % 600 == 0 else None
                changes = await accounts.changes_after(last, purge=purge, retention=CHANGE_RETENTION)
                rounds += 1
                if rounds % SESSION_SWEEP_ROUNDS == 0:
                    await drop_expired_session_sockets(ctx)
                for change in changes:
                    last = change.seq
                    if change.kind == "logout" and change.session_hash:
                        await disconnect_session(ctx, change.user_id, change.session_hash)
                    elif change.kind == "logout":
                        await disconnect_user(ctx, change.user_id)
                    else:
                        await refresh_user(ctx, change.user_id)
            except Exception:
                log.exception("identity change feed failed; retrying")

    async with running(loop(), name="identity-changes"):
        yield
