"""Browser login through OpenID Connect: /auth/login, /auth/callback and /auth/backchannel-logout.

These are redirects and form posts, not JSON API operations, so they are plain aiohttp routes.
"""

from __future__ import annotations

import logging
import unicodedata
from datetime import UTC, datetime, timedelta
from html import escape
from urllib.parse import urlsplit

from aiohttp import web

from server.core.api import body_deadline
from server.core.context import AppContext, ctx_of
from server.core.errors import Problem
from server.core.http import client_address
from server.identity import service, sessions
from server.identity.accounts import Accounts
from server.identity.authn import SESSION_COOKIE
from server.identity.oidc import RP, RelyingParty
from server.identity.socket import disconnect_user

log = logging.getLogger("brygga.identity")

LOGIN_COOKIE = "brygga_login"


def rp_of(ctx: AppContext) -> RelyingParty:
    return ctx.need(RP)


def user_issuer(ctx: AppContext, issuer: str) -> str:
    """Users of the built-in provider are stored with issuer "local"."""
    return service.LOCAL_ISSUER if issuer == ctx.settings.builtin_issuer else issuer


def safe_return_to(value: str | None) -> str:
    """Where to go after login: a same-origin relative path, or "/".

    Browsers drop tabs and newlines from URLs and read a backslash as a slash, so "/%09/evil.example"
    (decoded: slash, tab, slash) would become "//evil.example", another site: any control character,
    whitespace or backslash, a scheme or a host refuses the value. A newline would also break the
    Location header.
    """
    if not value or len(value) > 500 or not value.startswith("/") or value.startswith("//"):
        return "/"
    if "\\" in value or any(char.isspace() or unicodedata.category(char)[0] in "CZ" for char in value):
        return "/"
    parts = urlsplit(value)
    if parts.scheme or parts.netloc:
        return "/"
    return value


def session_cookie_options(ctx: AppContext) -> dict[str, object]:
    return {"httponly": True, "samesite": "Lax", "secure": ctx.settings.is_https, "path": "/"}


def _error_page(detail: str, status: int) -> web.Response:
    text = (
        "<!doctype html><html lang='sv'><head><meta charset='utf-8'><title>Inloggningen misslyckades</title>"
        "<link rel='stylesheet' href='/idp/static/idp.css'></head><body><main class='card'>"
        "<h1>Inloggningen misslyckades</h1>"
        f"<p class='error' role='alert'>{escape(detail)}</p>"
        "<p><a href='/auth/login'>Logga in igen</a> · <a href='/auth/login' lang='en'>Log in again</a></p>"
        "</main></body></html>"
    )
    return web.Response(text=text, status=status, content_type="text/html")


async def login(request: web.Request) -> web.StreamResponse:
    ctx = ctx_of(request)
    url, pending = await rp_of(ctx).begin()
    pending["return_to"] = safe_return_to(request.query.get("return_to"))
    secret = await Accounts.of(ctx).begin_login(pending)
    response = web.Response(status=302, headers={"Location": url})
    response.set_cookie(
        LOGIN_COOKIE,
        secret,
        max_age=int(sessions.PRELOGIN_TTL.total_seconds()),
        **{**session_cookie_options(ctx), "path": "/auth"},  # type: ignore[arg-type]
    )
    return response


async def callback(request: web.Request) -> web.StreamResponse:
    ctx = ctx_of(request)
    rp = rp_of(ctx)
    pending = await Accounts.of(ctx).take_prelogin(request.cookies.get(LOGIN_COOKIE, ""))
    if pending is None:
        return _error_page("Inloggningen hade gått ut eller startades i en annan webbläsare. Logga in igen.", 400)
    try:
        claims, id_token = await rp.finish(pending, dict(request.query))
        secret = await Accounts.of(ctx).start_session(
            claims,
            id_token,
            issuer=rp.issuer,
            user_issuer=user_issuer(ctx, rp.issuer),
            timeouts=sessions.Timeouts.of(ctx.settings),
            user_agent=request.headers.get("User-Agent"),
            ip=client_address(request),
        )
    except Problem as problem:
        log.info("login refused", extra={"code": problem.code})
        return _error_page(problem.detail, problem.status)
    response = web.Response(status=302, headers={"Location": str(pending.get("return_to") or "/")})
    response.set_cookie(SESSION_COOKIE, secret, **session_cookie_options(ctx))  # type: ignore[arg-type]
    response.del_cookie(LOGIN_COOKIE, path="/auth")
    return response


async def handle_logout_token(ctx: AppContext, token: str) -> bool:
    """Validate a back-channel logout token, refuse replays, end the sessions and drop their sockets."""
    rp = rp_of(ctx)
    claims = await rp.validate_logout_token(token)
    expires = datetime.fromtimestamp(float(claims.get("exp") or claims["iat"]), UTC) + timedelta(minutes=10)
    ended = await Accounts.of(ctx).provider_logout(
        claims, expires, issuer=rp.issuer, user_issuer=user_issuer(ctx, rp.issuer)
    )
    for ended_user in ended:
        await disconnect_user(ctx, ended_user)  # this node at once; others within the feed's poll
    return True


async def backchannel_logout(request: web.Request) -> web.Response:
    ctx = ctx_of(request)
    async with body_deadline(request):
        form = await request.post()
    token = form.get("logout_token")
    headers = {"Cache-Control": "no-store"}
    if not isinstance(token, str) or not token:
        return web.json_response({"error": "invalid_request"}, status=400, headers=headers)
    try:
        await handle_logout_token(ctx, token)
    except Problem as problem:
        log.info("back-channel logout refused", extra={"code": problem.code})
        return web.json_response(
            {"error": "invalid_request", "error_description": problem.detail}, status=400, headers=headers
        )
    return web.Response(status=200, headers=headers)


def setup_routes(app: web.Application) -> None:
    app.router.add_get("/auth/login", login)
    app.router.add_get("/auth/callback", callback)
    app.router.add_post("/auth/backchannel-logout", backchannel_logout)
