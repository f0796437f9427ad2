"""HTTP routes: who am I, the browser session (CSRF token, logout), personal access tokens, unit members."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Annotated

from aiohttp import web
from pydantic import BaseModel, BeforeValidator, Field
from sqlalchemy import select

from server.audit.service import record
from server.core.api import ApiRouter, json_integer, path_uuid
from server.core.context import AppContext, ctx_of
from server.core.db import utcnow
from server.core.errors import Forbidden, NotFound
from server.core.models import AccessToken, Membership, Unit, User
from server.identity import policy, service, sessions
from server.identity.authn import CSRF_HEADER, SESSION_COOKIE, principal_from_session, principal_of
from server.identity.principal import UNIT_ROLES, Principal
from server.identity.socket import disconnect_session, disconnect_user, refresh_user
from server.identity.tokens import create_token

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
    async with ctx.db.transaction() as session:
        rows = await session.execute(select(Unit.id, Unit.name).where(Unit.id.in_(principal.unit_ids)))
        names = {unit_id: name for unit_id, name in rows.all()}
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
    principal = principal_of(request)
    async with ctx_of(request).db.transaction() as session:
        rows = await session.execute(
            select(AccessToken).where(AccessToken.user_id == principal.user_id).order_by(AccessToken.created_at)
        )
        return TokenList(items=[token_info(token) for token in rows.scalars()])


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
    principal = principal_of(request)
    ttl = timedelta(hours=body.ttl_hours) if body.ttl_hours else None
    async with ctx_of(request).db.transaction() as session:
        token, secret = await create_token(session, principal.user_id, body.name, ttl)
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
    async with ctx_of(request).db.transaction() as session:
        token = await session.get(AccessToken, token_id)
        if token is None or token.user_id != principal.user_id:
            raise NotFound("token")
        token.revoked_at = token.revoked_at or utcnow()
        await sessions.record_change(session, principal.user_id, "changed")
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
    async with ctx.db.transaction() as session:
        row = await sessions.get_row(session, principal.session_id)
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
        async with ctx.db.transaction() as session:
            row = await sessions.get_row(session, principal.session_id)
            id_token = row.id_token if row else None
            await sessions.destroy(session, principal.session_id)
            await record(session, actor=principal, action="auth.logout", object_type="session")
        await disconnect_session(ctx, principal.user_id, principal.session_id)
        logout_url = await ctx.services["rp"].logout_url(id_token)
    return _logged_out(ctx, LogoutResult(logout_url=logout_url, ended_sessions=1 if principal.session_id else 0))


@api.route(
    "POST",
    "/api/v1/session/logout-everywhere",
    summary="End all my sessions and connections, on every device",
    tags=["identity"],
    response=LogoutResult,
)
async def logout_everywhere(request: web.Request) -> web.Response:
    ctx = ctx_of(request)
    principal = principal_of(request)
    async with ctx.db.transaction() as session:
        row = await sessions.get_row(session, principal.session_id) if principal.session_id else None
        id_token = row.id_token if row else None
        ended = await sessions.destroy_user_sessions(session, principal.user_id)
        user = await session.get(User, principal.user_id)
        await record(
            session, actor=principal, action="auth.logout_everywhere", object_type="user", object_id=principal.user_id
        )
    await disconnect_user(ctx, principal.user_id)
    if user is not None and user.issuer == service.LOCAL_ISSUER:
        await ctx.services["idp"].end_user_sessions(user)
    logout_url = await ctx.services["rp"].logout_url(id_token) if id_token else None
    return _logged_out(ctx, LogoutResult(logout_url=logout_url, ended_sessions=ended))


# --------------------------------------------------------------------------------------- unit members


class Member(BaseModel):
    user_id: uuid.UUID
    display_name: str
    title: str | None
    role: str


class MemberList(BaseModel):
    items: list[Member]


class MemberSet(BaseModel):
    role: str = Field(default="member", pattern="^(member|unit_admin)$", description=f"One of {list(UNIT_ROLES)}.")


async def _require_unit_admin(ctx: AppContext, principal: Principal, unit_id: uuid.UUID, ip: str | None) -> None:
    if policy.allowed(principal, "unit.administer", unit_id):
        return
    async with ctx.db.transaction() as session:
        await record(
            session,
            actor=principal,
            action="unit.members",
            object_type="unit",
            object_id=unit_id,
            unit_id=unit_id,
            outcome="denied",
            ip=ip,
        )
    raise Forbidden("Only an administrator of this unit may manage its members.")


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
    await _require_unit_admin(ctx, principal, unit_id, request.remote)
    async with ctx.db.transaction() as session:
        rows = await session.execute(
            select(User, Membership.role)
            .join(Membership, Membership.user_id == User.id)
            .where(Membership.unit_id == unit_id)
            .order_by(User.display_name)
        )
        return MemberList(
            items=[
                Member(user_id=user.id, display_name=user.display_name, title=user.title, role=role)
                for user, role in rows.all()
            ]
        )


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
    await _require_unit_admin(ctx, principal, unit_id, request.remote)
    async with ctx.db.transaction() as session:
        user = await session.get(User, user_id)
        if user is None:
            raise NotFound("user")
        await service.set_membership(session, user, unit_id, body.role)
        await record(
            session,
            actor=principal,
            action="unit.member_set",
            object_type="user",
            object_id=user_id,
            unit_id=unit_id,
            details={"role": body.role},
        )
        member = Member(user_id=user.id, display_name=user.display_name, title=user.title, role=body.role)
    await refresh_user(ctx, user_id)
    return member


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
    await _require_unit_admin(ctx, principal, unit_id, request.remote)
    async with ctx.db.transaction() as session:
        user = await session.get(User, user_id)
        if user is None or not await service.remove_membership(session, user, unit_id):
            raise NotFound("membership")
        await record(
            session,
            actor=principal,
            action="unit.member_remove",
            object_type="user",
            object_id=user_id,
            unit_id=unit_id,
        )
    await refresh_user(ctx, user_id)
