"""HTTP endpoints of the built-in provider under /idp (discovery, JWKS, login pages, token, userinfo, logout)."""

from __future__ import annotations

import asyncio
import hmac
import secrets
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from aiohttp import web
from authlib.oauth2.rfc6749.errors import OAuth2Error

from auth import accounts, pages
from auth.provider import IDP, Provider
from server.audit.service import record
from server.core.api import body_deadline
from server.core.app_keys import envelope_for
from server.core.context import ctx_of
from server.core.http import CSP, client_address
from server.core.models import User

IDP_COOKIE = "brygga_idp"
FORM_COOKIE = "brygga_idp_form"
STATIC = Path(__file__).resolve().parent / "static"
ENROL_TTL = 600


def provider_of(request: web.Request) -> Provider:
    return ctx_of(request).need(IDP)


def _cookie_options(request: web.Request) -> dict[str, Any]:
    return {"httponly": True, "samesite": "Lax", "secure": ctx_of(request).settings.is_https, "path": "/idp"}


def _origin(uri: str) -> str:
    parts = urlsplit(uri)
    return f"{parts.scheme}://{parts.netloc}"


def _html(request: web.Request, text: str, *, status: int = 200, redirect_uri: str | None = None) -> web.Response:
    response = web.Response(text=text, status=status, content_type="text/html")
    if redirect_uri:
        # The login form's answer redirects to the client; allow exactly that origin as a form target.
        response.headers["Content-Security-Policy"] = CSP.replace(
            "form-action 'self'", f"form-action 'self' {_origin(redirect_uri)}"
        )
    return response


def _respond(result: tuple[int, Any, dict[str, str]]) -> web.Response:
    status, body, headers = result
    if status in (301, 302, 303) and "Location" in headers:
        return web.Response(status=302, headers={"Location": headers["Location"], "Cache-Control": "no-store"})
    headers = {key: value for key, value in headers.items() if key.lower() != "content-type"}
    return web.json_response(body, status=status, headers=headers)


def _oauth_error_response(request: web.Request, provider: Provider, error: OAuth2Error, lang: str) -> web.Response:
    if error.redirect_uri:
        status, body, headers = error()
        headers = dict(headers)
        return _respond((status, body, headers))
    return _html(request, pages.error_page(lang, error.get_error_description() or error.error), status=400)


def _with_form_token(request: web.Request, response: web.Response, token: str) -> web.Response:
    response.set_cookie(FORM_COOKIE, token, max_age=1800, **_cookie_options(request))
    return response


async def discovery(request: web.Request) -> web.Response:
    return web.json_response(provider_of(request).discovery(), headers={"Cache-Control": "max-age=300"})


async def jwks(request: web.Request) -> web.Response:
    return web.json_response(provider_of(request).keys.public_jwks(), headers={"Cache-Control": "max-age=300"})


async def authorize(request: web.Request) -> web.StreamResponse:
    provider = provider_of(request)
    query = dict(request.query)
    lang = pages.lang_of(query.get("ui_locales"))
    try:
        await provider.check_authorization(query)
    except OAuth2Error as error:
        return _oauth_error_response(request, provider, error, lang)
    prompts = set(query.get("prompt", "").split())
    if "login" not in prompts:
        user = await provider.resume(request.cookies.get(IDP_COOKIE, ""))
        max_age = query.get("max_age", "")
        too_old = user is not None and max_age.isdigit() and time.time() - user.auth_time > int(max_age)
        if user is not None and not too_old:
            return _respond(await provider.authorize(query, user))
    form_token = secrets.token_urlsafe(24)
    page = pages.login_page(lang, urlencode(query), form_token)
    return _with_form_token(request, _html(request, page, redirect_uri=query.get("redirect_uri")), form_token)


def _form_ok(request: web.Request, form: Any) -> bool:
    cookie = request.cookies.get(FORM_COOKIE, "")
    sent = str(form.get("form_token", ""))
    return bool(cookie) and hmac.compare_digest(cookie.encode(), sent.encode())


async def _finish_login(request: web.Request, provider: Provider, query: dict[str, str], user: Any) -> web.Response:
    async with ctx_of(request).db.transaction() as session:
        secret, auth_user = await provider.create_op_session(session, user)
    response = _respond(await provider.authorize(query, auth_user))
    response.set_cookie(IDP_COOKIE, secret, **_cookie_options(request))
    response.del_cookie(FORM_COOKIE, path="/idp")
    return response


async def _read_form(request: web.Request) -> tuple[Any, str, str, dict[str, str]]:
    """A provider form post: (form, language, the original authorisation query as sent, parsed)."""
    async with body_deadline(request):
        form = await request.post()
    raw_query = str(form.get("q", ""))
    return form, pages.lang_of(str(form.get("lang", ""))), raw_query, dict(parse_qsl(raw_query, keep_blank_values=True))


async def login(request: web.Request) -> web.StreamResponse:
    provider = provider_of(request)
    ctx = ctx_of(request)
    form, lang, raw_query, query = await _read_form(request)
    try:
        await provider.check_authorization(query)
    except OAuth2Error as error:
        return _oauth_error_response(request, provider, error, lang)
    login_name = str(form.get("login", ""))[:100]
    new_token = secrets.token_urlsafe(24)
    redirect_uri = query.get("redirect_uri")

    def again(message: str, status: int) -> web.Response:
        page = pages.login_page(lang, raw_query, new_token, message, login_name)
        return _with_form_token(request, _html(request, page, status=status, redirect_uri=redirect_uri), new_token)

    texts = pages.TEXTS[lang]
    if not _form_ok(request, form):
        return again(texts["expired"], 400)
    now = ctx.clock()
    throttle = ctx.need(accounts.LOGIN_THROTTLE)
    address = client_address(request) or "unknown"
    if throttle.blocked(login_name, address, now):
        return again(texts["slow_down"], 429)
    delay = throttle.delay(login_name, now)
    if delay:
        await asyncio.sleep(delay)
    ticket = totp_secret = ""
    envelope = await envelope_for(ctx)
    async with ctx.db.transaction() as session:
        result = await accounts.authenticate(
            session, envelope, login_name, str(form.get("password", "")), str(form.get("code", "")), now
        )
        outcome = result.outcome
        if outcome is accounts.Outcome.ENROL and result.user is not None:
            totp_secret = await accounts.start_enrolment(session, envelope, result.user, now)
            ticket = provider.sign(
                {
                    "iss": provider.issuer,
                    "sub": str(result.user.id),
                    "purpose": "totp_enrolment",
                    "exp": int(time.time()) + ENROL_TTL,
                },
                "enrol+jwt",
            )
        await record(
            session,
            actor=None,
            action="auth.login",
            object_type="user",
            object_id=result.user.id if result.user else None,
            outcome="allowed" if outcome in (accounts.Outcome.OK, accounts.Outcome.ENROL) else "denied",
            ip=client_address(request),
            details={"result": outcome.value, "provider": "builtin"},
        )
    if outcome not in (accounts.Outcome.OK, accounts.Outcome.ENROL):
        throttle.failed(login_name, address, now)
    if outcome is accounts.Outcome.OK and result.user is not None:
        return await _finish_login(request, provider, query, result.user)
    if outcome is accounts.Outcome.ENROL and result.user is not None:
        assert result.user.login is not None
        svg = accounts.qr_svg(accounts.provisioning_uri(totp_secret, result.user.login))
        page = pages.enrol_page(lang, raw_query, new_token, ticket, svg, totp_secret)
        return _with_form_token(request, _html(request, page, redirect_uri=redirect_uri), new_token)
    if outcome is accounts.Outcome.DISABLED:
        return again(texts["disabled"], 403)
    if outcome is accounts.Outcome.BAD_TOTP:
        return again(texts["bad_totp"], 401)
    if outcome is accounts.Outcome.TOTP_REQUIRED:
        return again(texts["totp_required"], 401)
    return again(texts["bad_credentials"], 401)


async def enrol(request: web.Request) -> web.StreamResponse:
    provider = provider_of(request)
    ctx = ctx_of(request)
    form, lang, raw_query, query = await _read_form(request)
    texts = pages.TEXTS[lang]
    ticket = str(form.get("ticket", ""))
    claims = provider.verify(ticket)
    if (
        not _form_ok(request, form)
        or claims is None
        or claims.get("purpose") != "totp_enrolment"
        or int(claims.get("exp", 0)) < time.time()
    ):
        form_token = secrets.token_urlsafe(24)
        page = pages.login_page(lang, raw_query, form_token, texts["expired"])
        return _with_form_token(request, _html(request, page, status=400), form_token)
    envelope = await envelope_for(ctx)
    async with ctx.db.transaction() as session:
        user = await session.get(User, uuid.UUID(str(claims["sub"])))
        if user is None or user.disabled:
            return _html(request, pages.error_page(lang, texts["disabled"]), status=403)
        confirmed = await accounts.confirm_enrolment(session, envelope, user, str(form.get("code", "")), ctx.clock())
        account = await accounts.get_account(session, user.id)
        secret = accounts.totp_secret_of(envelope, account) if account else None
    if confirmed:
        return await _finish_login(request, provider, query, user)
    new_token = secrets.token_urlsafe(24)
    assert secret is not None and user.login is not None
    svg = accounts.qr_svg(accounts.provisioning_uri(secret, user.login))
    page = pages.enrol_page(lang, raw_query, new_token, ticket, svg, secret, texts["enrol_bad"])
    return _with_form_token(
        request, _html(request, page, status=401, redirect_uri=query.get("redirect_uri")), new_token
    )


async def token(request: web.Request) -> web.Response:
    async with body_deadline(request):
        form = {key: str(value) for key, value in (await request.post()).items()}
    return _respond(await provider_of(request).token(form, dict(request.headers)))


async def userinfo(request: web.Request) -> web.Response:
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    info = await provider_of(request).userinfo(value.strip()) if scheme.lower() == "bearer" else None
    if info is None:
        return web.json_response(
            {"error": "invalid_token"}, status=401, headers={"WWW-Authenticate": 'Bearer error="invalid_token"'}
        )
    return web.json_response(info)


async def logout(request: web.Request) -> web.StreamResponse:
    """RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0)."""
    provider = provider_of(request)
    params: dict[str, str] = dict(request.query)
    if request.method == "POST":
        async with body_deadline(request):
            params.update({key: str(value) for key, value in (await request.post()).items()})
    lang = pages.lang_of(params.get("ui_locales"))
    hint = provider.verify(params["id_token_hint"]) if params.get("id_token_hint") else None
    audience = hint.get("aud") if hint else None
    client_id = params.get("client_id") or (audience[0] if isinstance(audience, list) else audience)
    target = params.get("post_logout_redirect_uri")
    if target:
        async with ctx_of(request).db.transaction() as session:
            client = await provider.load_client(session, client_id)
        if client is None or target not in client.post_logout_redirect_uris:
            detail = "post_logout_redirect_uri is not registered for this client."
            return _html(request, pages.error_page(lang, detail), status=400)
    await provider.end_session(secret=request.cookies.get(IDP_COOKIE), sid=None)
    if target:
        query = urlencode({"state": params["state"]}) if params.get("state") else ""
        response: web.Response = web.Response(
            status=302, headers={"Location": target + (("&" if "?" in target else "?") + query if query else "")}
        )
    else:
        response = _html(request, pages.logged_out_page(lang))
    response.del_cookie(IDP_COOKIE, path="/idp")
    return response


async def stylesheet(request: web.Request) -> web.FileResponse:
    return web.FileResponse(STATIC / "idp.css", headers={"Cache-Control": "max-age=3600"})


def setup_routes(app: web.Application) -> None:
    app.router.add_get("/idp/.well-known/openid-configuration", discovery)
    app.router.add_get("/idp/jwks", jwks)
    app.router.add_get("/idp/authorize", authorize)
    app.router.add_post("/idp/login", login)
    app.router.add_post("/idp/enrol", enrol)
    app.router.add_post("/idp/token", token)
    app.router.add_route("GET", "/idp/userinfo", userinfo)
    app.router.add_route("POST", "/idp/userinfo", userinfo)
    app.router.add_route("GET", "/idp/logout", logout)
    app.router.add_route("POST", "/idp/logout", logout)
    app.router.add_get("/idp/static/idp.css", stylesheet)
