"""HTTP routes: who am I, the browser session (CSRF token, logout), personal access tokens, unit members."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Annotated

from aiohttp import web
from pydantic import BaseModel, BeforeValidator, Field

from server.core.api import ApiRouter, json_integer, path_uuid
from server.core.context import AppContext, ctx_of
from server.core.http import client_address
from server.core.models import AccessToken, Membership, User
from server.core.principal import UNIT_ROLES, Principal
from server.identity import service
from server.identity.accounts import Accounts
from server.identity.authn import CSRF_HEADER, SESSION_COOKIE, principal_from_session, principal_of
from server.identity.oidc import RP
from server.identity.socket import disconnect_session, disconnect_user, refresh_user

api = ApiRouter()


class UnitRole(BaseModel):
    unit_id: uuid.UUID
    unit_name: str
    role: str


class Me(BaseModel):
    user_id: uuid.UUID
    display_name: str
    system_roles: list[str]
    units: list[UnitRole]
    auth_method: str


class TokenCreate(BaseModel):
    name: str = Field(min_length=1, max_length=100, description="What the token is for.")
    # JsonInt: JSON true/"5" must not pass as 1/5 (schemathesis: schema-violating request accepted)
    ttl_hours: Annotated[int, Field(ge=1, le=24 * 365), BeforeValidator(json_integer)] | None = Field(
        default=None, description="Lifetime; omit for no expiry."
    )


class TokenInfo(BaseModel):
    id: uuid.UUID
    name: str
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None


class TokenCreated(TokenInfo):
    token: str = Field(description="The secret. Shown only once; store it now.")


class TokenList(BaseModel):
    items: list[TokenInfo]


def token_info(token: AccessToken) -> TokenInfo:
    return TokenInfo.model_validate(token, from_attributes=True)


@api.route("GET", "/api/v1/me", summary="The logged-in user, roles and units", tags=["identity"], response=Me)
async def get_me(request: web.Request) -> Me:
    return await describe(ctx_of(request), principal_of(request))


async def describe(ctx: AppContext, principal: Principal) -> Me:
    names = await Accounts.of(ctx).unit_names(principal)
    units = [
        UnitRole(unit_id=unit_id, unit_name=names.get(unit_id, ""), role=role)
        for unit_id, role in principal.unit_roles.items()
    ]
    return Me(
        user_id=principal.user_id,
        display_name=principal.display_name,
        system_roles=sorted(principal.system_roles),
        units=sorted(units, key=lambda unit: unit.unit_name),
        auth_method=principal.auth_method,
    )


@api.route("GET", "/api/v1/tokens", summary="List my personal access tokens", tags=["identity"], response=TokenList)
async def list_tokens(request: web.Request) -> TokenList:
    tokens = await Accounts.of(ctx_of(request)).tokens(principal_of(request))
    return TokenList(items=[token_info(token) for token in tokens])


@api.route(
    "POST",
    "/api/v1/tokens",
    summary="Create a personal access token",
    tags=["identity"],
    body=TokenCreate,
    response=TokenCreated,
    status=201,
)
async def create_my_token(request: web.Request, body: TokenCreate) -> TokenCreated:
    ttl = timedelta(hours=body.ttl_hours) if body.ttl_hours else None
    token, secret = await Accounts.of(ctx_of(request)).create_token(principal_of(request), body.name, ttl)
    return TokenCreated(**token_info(token).model_dump(), token=secret)


@api.route(
    "DELETE",
    "/api/v1/tokens/{token_id}",
    summary="Revoke one of my tokens",
    tags=["identity"],
    status=204,
    errors=(404,),
)
async def revoke_token(request: web.Request) -> None:
    principal = principal_of(request)
    token_id = path_uuid(request, "token_id", "token")
    await Accounts.of(ctx_of(request)).revoke_token(principal, token_id)
    await refresh_user(ctx_of(request), principal.user_id)


# --------------------------------------------------------------------------------------- session


class SessionInfo(BaseModel):
    authenticated: bool
    login_url: str = Field(default="/auth/login", description="Send the browser here to log in.")
    user: Me | None = None
    csrf_header: str = CSRF_HEADER
    csrf_token: str | None = Field(default=None, description=f"Send as {CSRF_HEADER} on POST/PUT/PATCH/DELETE.")
    acr: str | None = None
    amr: list[str] = []
    expires_at: datetime | None = Field(default=None, description="Absolute end of the session.")
    idle_timeout_seconds: int


class LogoutResult(BaseModel):
    logout_url: str | None = Field(
        default=None, description="Navigate here to end the identity provider's session too (RP-initiated logout)."
    )
    ended_sessions: int = 1
    revoked_tokens: int = Field(default=0, description="Personal access tokens ended (log out everywhere ends all).")


@api.route(
    "GET",
    "/api/v1/session",
    summary="The browser session: who is logged in and the CSRF token",
    tags=["identity"],
    response=SessionInfo,
    security="public",
    description="Never 401: anonymous callers get authenticated=false and the login URL.",
)
async def get_session(request: web.Request) -> SessionInfo:
    ctx = ctx_of(request)
    idle = ctx.settings.session_idle_minutes * 60
    principal = await principal_from_session(ctx, request.cookies.get(SESSION_COOKIE, ""))
    if principal is None or principal.session_id is None:
        return SessionInfo(authenticated=False, idle_timeout_seconds=idle)
    row = await Accounts.of(ctx).session_row(principal.session_id)
    return SessionInfo(
        authenticated=True,
        user=await describe(ctx, principal),
        csrf_token=principal.csrf_token,
        acr=principal.acr,
        amr=list(row.amr) if row else [],
        expires_at=row.expires_at if row else None,
        idle_timeout_seconds=idle,
    )


def _logged_out(ctx: AppContext, result: LogoutResult) -> web.Response:
    response = web.json_response(result.model_dump(mode="json"))
    response.del_cookie(SESSION_COOKIE, path="/")
    return response


@api.route(
    "POST",
    "/api/v1/session/logout",
    summary="Log out this browser session",
    tags=["identity"],
    response=LogoutResult,
)
async def logout(request: web.Request) -> web.Response:
    ctx = ctx_of(request)
    principal = principal_of(request)
    logout_url = None
    if principal.session_id is not None:
        id_token = await Accounts.of(ctx).end_session(principal, principal.session_id)
        await disconnect_session(ctx, principal.user_id, principal.session_id)
        logout_url = await ctx.need(RP).logout_url(id_token)
    return _logged_out(ctx, LogoutResult(logout_url=logout_url, ended_sessions=1 if principal.session_id else 0))


@api.route(
    "POST",
    "/api/v1/session/logout-everywhere",
    summary="End all my sessions, personal access tokens and connections, on every device",
    tags=["identity"],
    response=LogoutResult,
)
async def logout_everywhere(request: web.Request) -> web.Response:
    ctx = ctx_of(request)
    principal = principal_of(request)
    ended = await Accounts.of(ctx).end_all_sessions(principal)
    await disconnect_user(ctx, principal.user_id)
    if ended.user is not None and ended.user.issuer == service.LOCAL_ISSUER:
        from auth.provider import IDP  # authlib loads with the server, not with every CLI command

        await ctx.need(IDP).end_user_sessions(ended.user)
    logout_url = await ctx.need(RP).logout_url(ended.id_token) if ended.id_token else None
    result = LogoutResult(logout_url=logout_url, ended_sessions=ended.sessions, revoked_tokens=ended.tokens)
    return _logged_out(ctx, result)


# --------------------------------------------------------------------------------------- unit members


class Member(BaseModel):
    user_id: uuid.UUID
    display_name: str
    title: str | None
    role: str
    public: bool = Field(description="Published in the directory (PUT .../publication changes it).")
    role_title: str | None = Field(description="The published role title, e.g. Sjuksköterska.")
    role_code: str | None


def member(user: User, membership: Membership) -> Member:
    return Member(
        user_id=user.id,
        display_name=user.display_name,
        title=user.title,
        role=membership.role,
        public=membership.public,
        role_title=membership.role_title,
        role_code=membership.role_code,
    )


class MemberList(BaseModel):
    items: list[Member]


class MemberSet(BaseModel):
    role: str = Field(default="member", pattern="^(member|unit_admin)$", description=f"One of {list(UNIT_ROLES)}.")


@api.route(
    "GET",
    "/api/v1/units/{unit_id}/members",
    summary="Members of a unit (unit administrators)",
    tags=["identity"],
    response=MemberList,
    errors=(404,),
)
async def list_members(request: web.Request) -> MemberList:
    ctx = ctx_of(request)
    principal = principal_of(request)
    unit_id = path_uuid(request, "unit_id", "unit")
    members = await Accounts.of(ctx).members(principal, unit_id, client_address(request))
    return MemberList(items=[member(user, membership) for user, membership in members])


@api.route(
    "PUT",
    "/api/v1/units/{unit_id}/members/{user_id}",
    summary="Add a user to a unit or change their role (unit administrators)",
    tags=["identity"],
    body=MemberSet,
    response=Member,
    errors=(404,),
)
async def put_member(request: web.Request, body: MemberSet) -> Member:
    ctx = ctx_of(request)
    principal = principal_of(request)
    unit_id = path_uuid(request, "unit_id", "unit")
    user_id = path_uuid(request, "user_id", "user")
    user, membership = await Accounts.of(ctx).set_member(
        principal,
        unit_id,
        user_id,
        body.role,
        any_organisation=ctx.settings.unit_admins_add_any_organisation,
        ip=client_address(request),
    )
    await refresh_user(ctx, user_id)
    return member(user, membership)


@api.route(
    "DELETE",
    "/api/v1/units/{unit_id}/members/{user_id}",
    summary="Remove a user from a unit (unit administrators)",
    tags=["identity"],
    status=204,
    errors=(404,),
)
async def delete_member(request: web.Request) -> None:
    ctx = ctx_of(request)
    principal = principal_of(request)
    unit_id = path_uuid(request, "unit_id", "unit")
    user_id = path_uuid(request, "user_id", "user")
    await Accounts.of(ctx).remove_member(principal, unit_id, user_id, ip=client_address(request))
    await refresh_user(ctx, user_id)
