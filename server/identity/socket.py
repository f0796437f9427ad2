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
from server.core.context import AppContext
from server.core.models import AccessToken
from server.core.realtime import Connections, unit_room, user_room
from server.identity import sessions, store, tokens
from server.identity.authn import authenticate_socket, refused
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
            raise refused("unavailable", "The server is busy; reconnect in a moment.") from None
        connections.add(sid, principal)
        await sio.enter_room(sid, user_room(principal.user_id))
        for unit_id in principal.unit_ids:
            await sio.enter_room(sid, unit_room(unit_id))

    async def disconnect(sid: str, *_reason: Any) -> None:
        connections.remove(sid)
        for hook in ctx.services.get("disconnect_hooks", []):  # domains clean up per-socket state
            try:
                await hook(sid)
            except Exception:
                log.exception("disconnect hook failed")

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
    connections: Connections = ctx.services["connections"]
    sids = connections.of_user(principal_user_id)
    for sid in sids:
        await ctx.sio.disconnect(sid)
    return len(sids)


async def disconnect_session(ctx: AppContext, user_id: uuid.UUID, session_hash: str) -> int:
    """Drop the sockets that authenticated with one browser session."""
    connections: Connections = ctx.services["connections"]
    sids = [sid for sid in connections.of_user(user_id) if connections.by_sid[sid].session_id == session_hash]
    for sid in sids:
        await ctx.sio.disconnect(sid)
    return len(sids)


async def refresh_user(ctx: AppContext, user_id: uuid.UUID) -> None:
    """Re-read a user's roles and apply them to this node's open sockets (or drop them if disabled)."""
    connections: Connections = ctx.services["connections"]
    if not connections.of_user(user_id):
        return
    dead_tokens: set[uuid.UUID] = set()
    async with ctx.db.transaction() as session:
        user = await store.get_user(session, user_id)
        principal = None
        if user is not None and not user.disabled:
            principal = await tokens.principal_for_user(session, user, auth_method="token")
        for sid in connections.of_user(user_id):
            token_id = connections.by_sid[sid].token_id
            if token_id is not None:
                token = await session.get(AccessToken, token_id)
                if token is None or not tokens.token_is_usable(token, ctx.clock()):
                    dead_tokens.add(token_id)
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
    connections: Connections = ctx.services["connections"]
    by_session = {
        principal.session_id: (sid, principal.user_id)
        for sid, principal in list(connections.by_sid.items())
        if principal.session_id
    }
    if not by_session:
        return 0
    timeouts = sessions.Timeouts.of(ctx.settings)
    async with ctx.db.transaction() as session:
        live = await sessions.live_session_hashes(session, list(by_session), ctx.clock(), timeouts)
    dropped = 0
    for session_hash, (sid, _user_id) in by_session.items():
        if session_hash not in live:
            await ctx.sio.disconnect(sid)
            dropped += 1
    return dropped


async def follow_changes(ctx: AppContext) -> AsyncIterator[None]:
    """Lifecycle: poll the identity change feed so every node applies permission changes and logouts
    (made by any node or by the CLI) to its open sockets within about a second."""
    async with ctx.db.transaction() as session:
        last = await sessions.last_change_seq(session)

    async def loop() -> None:
        nonlocal last
        rounds = 0
        while True:
            await asyncio.sleep(CHANGE_POLL_SECONDS)
            try:
                async with ctx.db.transaction() as session:
                    changes = await sessions.changes_after(session, last)
                    rounds += 1
                    if rounds % 600 == 0:
                        await sessions.purge_changes(session, ctx.clock() - CHANGE_RETENTION)
                        await sessions.purge_expired(session, ctx.clock(), sessions.Timeouts.of(ctx.settings))
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
