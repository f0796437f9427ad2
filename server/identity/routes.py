"""HTTP routes: who am I, and personal access tokens."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Annotated

from aiohttp import web
from pydantic import BaseModel, BeforeValidator, Field
from sqlalchemy import select

from server.core.api import ApiRouter, json_integer, path_uuid
from server.core.cluster import disconnect_user_everywhere
from server.core.context import ctx_of
from server.core.db import utcnow
from server.core.errors import NotFound
from server.core.models import AccessToken, Unit
from server.identity.authn import principal_of
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
    principal = principal_of(request)
    async with ctx_of(request).db.transaction() as session:
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
    # Sockets authenticated with it close on every node (they reconnect with a credential still valid).
    await disconnect_user_everywhere(ctx_of(request).sio, principal.user_id)
