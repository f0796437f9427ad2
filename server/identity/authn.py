"""Authenticate HTTP requests and socket.io connections.

Bearer personal access tokens work everywhere. Browser sessions are resolved by the session
resolver the identity plugin registers in `ctx.services["session_resolver"]`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from http.cookies import SimpleCookie
from typing import Any

from aiohttp import web

from server.core.context import AppContext, ctx_of
from server.core.errors import Unauthorized
from server.identity import tokens
from server.identity.principal import Principal

SESSION_COOKIE = "brygga_session"
PRINCIPAL_KEY: web.RequestKey[Principal] = web.RequestKey("brygga_principal", Principal)

# (ctx, session id) -> principal or None; registered by the session implementation.
SessionResolver = Callable[[AppContext, str], Awaitable[Principal | None]]


async def principal_from_bearer(ctx: AppContext, header: str) -> Principal | None:
    scheme, _, secret = header.partition(" ")
    if scheme.lower() != "bearer" or not secret:
        return None
    async with ctx.db.transaction() as session:
        return await tokens.authenticate_token(session, secret.strip())


async def principal_from_session(ctx: AppContext, session_id: str) -> Principal | None:
    resolver: SessionResolver | None = ctx.services.get("session_resolver")
    if resolver is None or not session_id:
        return None
    return await resolver(ctx, session_id)


async def authenticate(request: web.Request) -> Principal:
    """Return the caller or raise 401; the result is cached on the request."""
    if PRINCIPAL_KEY in request:
        return request[PRINCIPAL_KEY]
    ctx = ctx_of(request)
    principal = None
    header = request.headers.get("Authorization")
    if header:
        principal = await principal_from_bearer(ctx, header)
        if principal is None:
            raise Unauthorized("The bearer token is unknown, expired or revoked. Create a new token.")
    else:
        principal = await principal_from_session(ctx, request.cookies.get(SESSION_COOKIE, ""))
    if principal is None:
        raise Unauthorized()
    request[PRINCIPAL_KEY] = principal
    return principal


def principal_of(request: web.Request) -> Principal:
    if PRINCIPAL_KEY not in request:
        raise Unauthorized()
    return request[PRINCIPAL_KEY]


def refuse(code: str, message: str) -> Exception:
    """A socket.io connect refusal; the client's `connect_error` gets `{message, data: {code}}`.

    (A single dict argument would reach the client as its Python repr inside `message`.)
    """
    import socketio

    return socketio.exceptions.ConnectionRefusedError(message, {"code": code})  # type: ignore[no-any-return]


async def authenticate_socket(ctx: AppContext, environ: dict[str, Any], auth: Any) -> Principal:
    """Token in the `auth` payload, else the same-origin session cookie. Raises ConnectionRefusedError."""
    if isinstance(auth, dict) and auth.get("token"):
        principal = await principal_from_bearer(ctx, f"Bearer {auth['token']}")
        if principal is None:
            raise refuse("invalid_token", "The token is unknown, expired or revoked.")
        return principal
    cookie = SimpleCookie(environ.get("HTTP_COOKIE", ""))
    morsel = cookie.get(SESSION_COOKIE)
    principal = await principal_from_session(ctx, morsel.value if morsel else "")
    if principal is None:
        raise refuse("unauthorized", "Log in first, or pass {token} in the auth payload.")
    return principal
