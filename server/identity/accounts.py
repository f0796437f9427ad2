"""What identity's transport does, each in a transaction of its own: my units and tokens, signing in
and out (browser sessions, back-channel logout), unit membership (authorised and audited here), and
what the socket layer re-reads. Routes, the login pages and socket handlers stay thin."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.exc import IntegrityError

from server.audit.service import record
from server.core.context import AppContext
from server.core.db import Database, utcnow
from server.core.errors import Forbidden, NotFound, Problem
from server.core.models import AccessToken, Membership, User
from server.core.principal import Principal
from server.identity import service, sessions, store, tokens
from server.identity.models import BrowserSession, IdentityChange, LogoutTokenSeen
from server.identity.tokens import create_token


@dataclass(frozen=True)
class EndedSessions:
    id_token: str | None  # of the browser session the request came from, for RP-initiated logout
    sessions: int
    tokens: int
    user: User | None


class Accounts:
    def __init__(self, db: Database, clock: Callable[[], datetime]) -> None:
        self.db = db
        self.clock = clock

    @classmethod
    def of(cls, ctx: AppContext) -> Accounts:
        return cls(ctx.db, lambda: ctx.clock())  # the context's clock at each call (tests swap it)

    async def unit_names(self, principal: Principal) -> dict[uuid.UUID, str]:
        async with self.db.transaction() as session:
            return await store.unit_names(session, principal.unit_ids)

    # ------------------------------------------------------------------------------ personal access tokens

    async def tokens(self, principal: Principal) -> list[AccessToken]:
        async with self.db.transaction() as session:
            return await store.list_tokens(session, principal.user_id)

    async def create_token(self, principal: Principal, name: str, ttl: timedelta | None) -> tuple[AccessToken, str]:
        async with self.db.transaction() as session:
            return await create_token(session, principal.user_id, name, ttl)

    async def revoke_token(self, principal: Principal, token_id: uuid.UUID) -> None:
        async with self.db.transaction() as session:
            token = await session.get(AccessToken, token_id)
            if token is None or token.user_id != principal.user_id:
                raise NotFound("token")
            token.revoked_at = token.revoked_at or utcnow()
            await sessions.record_change(session, principal.user_id, "changed")

    # ------------------------------------------------------------------------------ browser sessions

    async def session_row(self, session_id: str) -> BrowserSession | None:
        async with self.db.transaction() as session:
            return await sessions.get_row(session, session_id)

    async def end_session(self, principal: Principal, session_id: str) -> str | None:
        """End this browser session (audited); returns its ID token, for RP-initiated logout."""
        async with self.db.transaction() as session:
            row = await sessions.get_row(session, session_id)
            id_token = row.id_token if row else None
            await sessions.destroy(session, session_id)
            await record(session, actor=principal, action="auth.logout", object_type="session")
        return id_token

    async def end_all_sessions(self, principal: Principal) -> EndedSessions:
        """End every browser session and personal access token of the caller (audited)."""
        async with self.db.transaction() as session:
            row = await sessions.get_row(session, principal.session_id) if principal.session_id else None
            ended = await sessions.destroy_user_sessions(session, principal.user_id)
            revoked = await service.revoke_user_tokens(session, principal.user_id, self.clock())
            user = await session.get(User, principal.user_id)
            await record(
                session,
                actor=principal,
                action="auth.logout_everywhere",
                object_type="user",
                object_id=principal.user_id,
                details={"sessions": ended, "tokens": revoked},
            )
        return EndedSessions(row.id_token if row else None, ended, revoked, user)

    # ------------------------------------------------------------------------------ unit members

    async def _require_unit_admin(self, principal: Principal, unit_id: uuid.UUID, ip: str | None) -> None:
        async with self.db.transaction() as session:
            if await service.may_manage_members(session, principal, unit_id):
                return
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
        raise Forbidden(
            "Only an administrator of this unit, or a membership administrator of its organisation, "
            "may manage its members."
        )

    async def members(self, principal: Principal, unit_id: uuid.UUID, ip: str | None) -> list[tuple[User, Membership]]:
        await self._require_unit_admin(principal, unit_id, ip)
        async with self.db.transaction() as session:
            return await store.members(session, unit_id)

    async def set_member(
        self,
        principal: Principal,
        unit_id: uuid.UUID,
        user_id: uuid.UUID,
        role: str,
        *,
        any_organisation: bool,
        ip: str | None,
    ) -> tuple[User, Membership]:
        await self._require_unit_admin(principal, unit_id, ip)
        async with self.db.transaction() as session:
            user = await session.get(User, user_id)
            if user is None:
                raise NotFound("user")
            await service.check_new_member(session, principal, unit_id, user, any_organisation=any_organisation)
            await service.set_membership(session, user, unit_id, role)
            await record(
                session,
                actor=principal,
                action="unit.member_set",
                object_type="user",
                object_id=user_id,
                unit_id=unit_id,
                details={"role": role},
            )
            membership = await session.get(Membership, (user_id, unit_id))
            assert membership is not None  # just set
        return user, membership

    async def remove_member(
        self, principal: Principal, unit_id: uuid.UUID, user_id: uuid.UUID, *, ip: str | None
    ) -> None:
        await self._require_unit_admin(principal, unit_id, ip)
        async with self.db.transaction() as session:
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

    # ------------------------------------------------------------------------------ signing in and out (web_auth.py)

    async def begin_login(self, pending: dict[str, Any]) -> str:
        """Keep the login's pending state until the callback; returns the secret for its cookie."""
        async with self.db.transaction() as session:
            return await sessions.create_prelogin(session, self.clock(), pending)

    async def take_prelogin(self, secret: str) -> dict[str, Any] | None:
        async with self.db.transaction() as session:
            return await sessions.take_prelogin(session, secret, self.clock())

    async def start_session(
        self,
        claims: dict[str, Any],
        id_token: str,
        *,
        issuer: str,
        user_issuer: str,
        timeouts: sessions.Timeouts,
        user_agent: str | None,
        ip: str | None,
    ) -> str:
        """The user the provider vouched for (created or updated) gets a browser session; returns its secret."""
        async with self.db.transaction() as session:
            user = await service.user_from_claims(session, user_issuer, claims)
            amr = claims.get("amr")
            secret = await sessions.create_login_session(
                session,
                self.clock(),
                timeouts,
                user.id,
                issuer=issuer,
                idp_sid=str(claims["sid"]) if claims.get("sid") else None,
                acr=str(claims["acr"]) if claims.get("acr") else None,
                amr=[str(item) for item in amr] if isinstance(amr, list) else [],
                id_token=id_token if len(id_token) < 8000 else None,
                user_agent=user_agent,
            )
            await record(
                session,
                actor=None,
                action="auth.session_start",
                object_type="user",
                object_id=user.id,
                ip=ip,
                details={"acr": claims.get("acr"), "issuer": issuer},
            )
        return secret

    async def provider_logout(
        self, claims: dict[str, Any], expires: datetime, *, issuer: str, user_issuer: str
    ) -> set[uuid.UUID]:
        """End the sessions a (validated) back-channel logout token names, once per token; returns their users."""
        ended: set[uuid.UUID] = set()
        try:
            async with self.db.transaction() as session:
                session.add(LogoutTokenSeen(issuer=issuer, jti=str(claims["jti"]), expires_at=expires))
                await session.flush()
                user_id = None
                if claims.get("sub"):
                    user = await store.get_user_by_subject(session, user_issuer, str(claims["sub"]))
                    if user is None and not claims.get("sid"):
                        return ended  # nobody here to log out
                    user_id = user.id if user else None
                ended = await sessions.destroy_by_provider(
                    session, issuer, sid=str(claims["sid"]) if claims.get("sid") else None, user_id=user_id
                )
                for ended_user in ended:
                    # Every node drops all of the user's sockets; clients whose credentials are still
                    # valid (another device's session, a token) simply reconnect.
                    await sessions.record_change(session, ended_user, "logout")
        except IntegrityError:
            raise Problem("logout_token_replayed", "This logout token was already used.", status=400) from None
        return ended

    # ------------------------------------------------------------------------------ sockets (socket.py, authn.py)

    async def token_principal(self, secret: str) -> Principal | None:
        async with self.db.transaction() as session:
            return await tokens.authenticate_token(session, secret)

    async def current_principal(
        self, user_id: uuid.UUID, token_ids: set[uuid.UUID | None]
    ) -> tuple[Principal | None, set[uuid.UUID]]:
        """The user's roles now (None if gone or disabled), and which of `token_ids` no longer work."""
        dead_tokens: set[uuid.UUID] = set()
        async with self.db.transaction() as session:
            user = await store.get_user(session, user_id)
            principal = None
            if user is not None and not user.disabled:
                principal = await tokens.principal_for_user(session, user, auth_method="token")
            for token_id in token_ids:
                if token_id is None:
                    continue
                token = await session.get(AccessToken, token_id)
                if token is None or not tokens.token_is_usable(token, self.clock()):
                    dead_tokens.add(token_id)
        return principal, dead_tokens

    async def live_sessions(self, hashes: list[str], timeouts: sessions.Timeouts) -> set[str]:
        async with self.db.transaction() as session:
            return await sessions.live_session_hashes(session, hashes, self.clock(), timeouts)

    async def last_change(self) -> int:
        async with self.db.transaction() as session:
            return await sessions.last_change_seq(session)

    async def changes_after(
        self, seq: int, *, purge: sessions.Timeouts | None, retention: timedelta
    ) -> list[IdentityChange]:
        """Identity changes after `seq`; with `purge`, also drop old changes and expired sessions."""
        async with self.db.transaction() as session:
            changes = await sessions.changes_after(session, seq)
            if purge is not None:
                await sessions.purge_changes(session, self.clock() - retention)
                await sessions.purge_expired(session, self.clock(), purge)
        return changes
