"""The identity plugin: sessions, the built-in OpenID Provider under /idp, Brygga as relying party."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from aiohttp import web

from server.core.context import AppContext
from server.core.plugin import Plugin
from server.core.principal import Principal
from server.identity import sessions
from server.identity.cli import register_cli
from server.identity.demo import seed_demo
from server.identity.oidc import RP, HttpAccess, RelyingParty, RpConfig
from server.identity.routes import api
from server.identity.socket import follow_changes

if TYPE_CHECKING:  # the provider (authlib) loads only when the server starts, not for every CLI command
    from auth.provider import Provider

log = logging.getLogger("brygga.identity")

BUILTIN_CLIENT_ID = "brygga"


class BuiltinAccess:
    """The relying party reaches the built-in provider in-process (same protocol objects, no socket)."""

    def __init__(self, provider: Provider) -> None:
        self.provider = provider

    async def get_json(self, url: str, headers: dict[str, str] | None = None) -> dict[str, Any]:
        if url == self.provider.url("/userinfo"):
            scheme, _, token = (headers or {}).get("Authorization", "").partition(" ")
            info = await self.provider.userinfo(token) if scheme == "Bearer" else None
            if info is None:
                raise ValueError("userinfo refused")
            return info
        if url == self.provider.url("/.well-known/openid-configuration"):
            return self.provider.discovery()
        if url == self.provider.url("/jwks"):
            return self.provider.keys.public_jwks()
        raise ValueError(f"unknown built-in provider URL {url}")

    async def post_form(self, url: str, form: dict[str, str], headers: dict[str, str]) -> tuple[int, Any]:
        if url != self.provider.url("/token"):
            raise ValueError(f"unknown built-in provider URL {url}")
        status, body, _headers = await self.provider.token(form, headers)
        return status, body


def rp_config(ctx: AppContext) -> RpConfig:
    settings = ctx.settings
    base = settings.public_base_url.rstrip("/")
    builtin = settings.uses_builtin_idp
    return RpConfig(
        issuer=settings.builtin_issuer if builtin else settings.oidc_issuer,
        client_id=BUILTIN_CLIENT_ID if builtin else settings.oidc_client_id,
        client_secret="" if builtin else settings.oidc_client_secret,
        redirect_uri=base + "/auth/callback",
        post_logout_redirect_uri=base + "/",
        scopes=settings.oidc_scopes,
        required_acr=list(settings.oidc_required_acr),
        allowed_algs=list(settings.oidc_allowed_algs),
    )


async def identity_services(ctx: AppContext) -> AsyncIterator[None]:
    timeouts = sessions.Timeouts.of(ctx.settings)

    async def resolve_session(ctx: AppContext, secret: str) -> Principal | None:
        async with ctx.db.transaction() as session:
            return await sessions.resolve(session, secret, ctx.clock(), timeouts)

    from auth import accounts
    from auth.provider import IDP, Provider
    from server.identity import web_auth

    ctx.session_resolver = resolve_session
    policy = accounts.ThrottlePolicy(
        per_account_source=ctx.settings.idp_max_failures, window=timedelta(minutes=ctx.settings.idp_throttle_minutes)
    )
    if ctx.find(accounts.LOGIN_THROTTLE) is None:  # a throttle set before start (tests) is kept
        ctx.provide(accounts.LOGIN_THROTTLE, accounts.LoginThrottle(policy))
    accounts.verify_password(None, "")  # hash the dummy now: the first unknown login is not slower than others
    provider = Provider(ctx)
    ctx.provide(IDP, provider)
    config = rp_config(ctx)
    http_access: HttpAccess | None = None
    if ctx.settings.uses_builtin_idp:
        if config.required_acr:
            log.warning("BRYGGA_OIDC_REQUIRED_ACR is set but the built-in provider never claims it; nobody can log in")
        access: Any = BuiltinAccess(provider)
        backchannel = config.post_logout_redirect_uri.rstrip("/") + "/auth/backchannel-logout"

        async def deliver(token: str) -> bool:
            return await web_auth.handle_logout_token(ctx, token)

        provider.local_logout[backchannel] = deliver
        try:
            async with ctx.db.transaction() as session:
                await provider.register_client(
                    session,
                    BUILTIN_CLIENT_ID,
                    name="Brygga",
                    redirect_uris=[config.redirect_uri],
                    post_logout_redirect_uris=[config.post_logout_redirect_uri],
                    backchannel_logout_uri=backchannel,
                )
        except Exception:
            log.exception("could not register the built-in client; run `brygga migrate`")
    else:
        access = http_access = HttpAccess()
    ctx.provide(RP, RelyingParty(config, access))
    try:
        yield
    finally:
        await provider.close()
        if http_access is not None:
            await http_access.close()


def setup_routes(app: web.Application) -> None:
    from auth import routes as idp_routes
    from server.identity import web_auth

    idp_routes.setup_routes(app)
    web_auth.setup_routes(app)


PLUGIN = Plugin(
    name="identity",
    api=api,
    cli=register_cli,
    lifecycle=[identity_services, follow_changes],
    setup_routes=setup_routes,
    seed_demo=seed_demo,
)
