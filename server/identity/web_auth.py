"""Browser login through OpenID Connect: /auth/login, /auth/callback and /auth/backchannel-logout.

These are redirects and form posts, not JSON API operations, so they are plain aiohttp routes.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from html import escape

from aiohttp import web
from sqlalchemy.exc import IntegrityError

from server.audit.service import record
from server.core.context import AppContext, ctx_of
from server.core.errors import Problem
from server.identity import service, sessions, store
from server.identity.authn import SESSION_COOKIE
from server.identity.models import LogoutTokenSeen
from server.identity.oidc import RelyingParty
from server.identity.socket import disconnect_user

log = logging.getLogger("brygga.identity")

LOGIN_COOKIE = "brygga_login"


def rp_of(ctx: AppContext) -> RelyingParty:
    rp: RelyingParty = ctx.services["rp"]
    return rp


def user_issuer(ctx: AppContext, issuer: str) -> str:
    """Users of the built-in provider are stored with issuer "local"."""
    return service.LOCAL_ISSUER if issuer == ctx.settings.builtin_issuer else issuer


def safe_return_to(value: str | None) -> str:
    if value and value.startswith("/") and not value.startswith("//") and "\\" not in value:
        return value[:500]
    return "/"


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
    async with ctx.db.transaction() as session:
        secret = await sessions.create_prelogin(session, ctx.clock(), pending)
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
    async with ctx.db.transaction() as session:
        pending = await sessions.take_prelogin(session, request.cookies.get(LOGIN_COOKIE, ""), ctx.clock())
    if pending is None:
        return _error_page("Inloggningen hade gått ut eller startades i en annan webbläsare. Logga in igen.", 400)
    try:
        claims, id_token = await rp.finish(pending, dict(request.query))
        async with ctx.db.transaction() as session:
            user = await service.user_from_claims(session, user_issuer(ctx, rp.issuer), claims)
            amr = claims.get("amr")
            secret = await sessions.create_login_session(
                session,
                ctx.clock(),
                sessions.Timeouts.of(ctx.settings),
                user.id,
                issuer=rp.issuer,
                idp_sid=str(claims["sid"]) if claims.get("sid") else None,
                acr=str(claims["acr"]) if claims.get("acr") else None,
                amr=[str(item) for item in amr] if isinstance(amr, list) else [],
                id_token=id_token if len(id_token) < 8000 else None,
                user_agent=request.headers.get("User-Agent"),
            )
            await record(
                session,
                actor=None,
                action="auth.session_start",
                object_type="user",
                object_id=user.id,
                ip=request.remote,
                details={"acr": claims.get("acr"), "issuer": rp.issuer},
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
    try:
        async with ctx.db.transaction() as session:
            session.add(LogoutTokenSeen(issuer=rp.issuer, jti=str(claims["jti"]), expires_at=expires))
            await session.flush()
            user_id = None
            if claims.get("sub"):
                user = await store.get_user_by_subject(session, user_issuer(ctx, rp.issuer), str(claims["sub"]))
                if user is None and not claims.get("sid"):
                    return True  # nobody here to log out
                user_id = user.id if user else None
            ended = await sessions.destroy_by_provider(
                session, rp.issuer, sid=str(claims["sid"]) if claims.get("sid") else None, user_id=user_id
            )
            for ended_user in ended:
                # Every node drops all of the user's sockets; clients whose credentials are still
                # valid (another device's session, a token) simply reconnect.
                await sessions.record_change(session, ended_user, "logout")
    except IntegrityError:
        raise Problem("logout_token_replayed", "This logout token was already used.", status=400) from None
    for ended_user in ended:
        await disconnect_user(ctx, ended_user)  # this node at once; others within the feed's poll
    return True


async def backchannel_logout(request: web.Request) -> web.Response:
    ctx = ctx_of(request)
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
