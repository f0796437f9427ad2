"""Authenticate HTTP requests and socket.io connections.

Bearer personal access tokens work everywhere. Browser sessions are resolved by the session
resolver the identity plugin sets as `ctx.session_resolver`.
"""

from __future__ import annotations

import hmac
from http.cookies import SimpleCookie
from typing import Any

from aiohttp import web

from server.core.background import detached
from server.core.context import AppContext, ctx_of
from server.core.errors import Problem, Unauthorized
from server.core.principal import Principal
from server.identity import tokens
from server.identity.accounts import Accounts

SESSION_COOKIE = "brygga_session"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
PRINCIPAL_KEY: web.RequestKey[Principal] = web.RequestKey("brygga_principal", Principal)

# Meeting guest tokens (`ctx.guest_resolver`, set by the video domain) work only for socket.io, never for
# the HTTP API.


async def principal_from_bearer(ctx: AppContext, header: str) -> Principal | None:
    scheme, _, secret = header.partition(" ")
    if scheme.lower() != "bearer" or not secret:
        return None
    principal = await Accounts.of(ctx).token_principal(secret.strip())
    if principal is not None and principal.token_id is not None:
        detached(tokens.note_token_use(ctx.db, principal.token_id))
    return principal


async def principal_from_session(ctx: AppContext, session_id: str) -> Principal | None:
    resolver = ctx.session_resolver
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
        if principal is not None:
            check_csrf(request, ctx, principal)
    if principal is None:
        raise Unauthorized()
    request[PRINCIPAL_KEY] = principal
    return principal


def check_csrf(request: web.Request, ctx: AppContext, principal: Principal) -> None:
    """State-changing requests on a cookie session need the session's CSRF token and a known Origin.

    Bearer-token requests are exempt: a browser never attaches them on its own.
    """
    if request.method in SAFE_METHODS:
        return
    origin = request.headers.get("Origin")
    if origin is not None and origin.rstrip("/") not in ctx.settings.origins:
        raise Problem("csrf_failed", "This request comes from a foreign web origin and was refused.", status=403)
    sent = request.headers.get(CSRF_HEADER, "")
    expected = principal.csrf_token or ""
    if not expected or not hmac.compare_digest(sent.encode(), expected.encode()):
        raise Problem(
            "csrf_failed", f"Send the {CSRF_HEADER} header from GET /api/v1/session with this request.", status=403
        )


def principal_of(request: web.Request) -> Principal:
    if PRINCIPAL_KEY not in request:
        raise Unauthorized()
    return request[PRINCIPAL_KEY]


async def authenticate_socket(ctx: AppContext, environ: dict[str, Any], auth: Any) -> Principal:
    """Token in the `auth` payload, a meeting guest token, else the same-origin session cookie.

    Raises ConnectionRefusedError.
    """
    if isinstance(auth, dict) and auth.get("guest_token"):
        guest_resolver = ctx.guest_resolver
        guest = await guest_resolver(ctx, str(auth["guest_token"])) if guest_resolver else None
        if guest is None:
            raise refused("invalid_guest_token", "The guest session has expired or was revoked.")
        return guest
    if isinstance(auth, dict) and auth.get("token"):
        principal = await principal_from_bearer(ctx, f"Bearer {auth['token']}")
        if principal is None:
            raise refused("invalid_token", "The token is unknown, expired or revoked.")
        return principal
    cookie = SimpleCookie(environ.get("HTTP_COOKIE", ""))
    morsel = cookie.get(SESSION_COOKIE)
    principal = await principal_from_session(ctx, morsel.value if morsel else "")
    if principal is None:
        raise refused("unauthorized", "Log in first, or pass {token} in the auth payload.")
    return principal


def refused(code: str, message: str) -> Exception:
    """A socket.io refusal: the client's connect_error gets `message` and `data: {code, message}`."""
    from socketio.exceptions import ConnectionRefusedError as Refused

    refusal: Exception = Refused(message, {"code": code, "message": message})
    return refusal
