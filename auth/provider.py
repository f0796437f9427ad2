"""The built-in OpenID Provider's protocol core, on authlib's `AuthorizationServer`.

authlib's server side is synchronous and calls hooks such as `query_client` or
`query_authorization_code` from deep inside. Instead of blocking the event loop on the database,
each request is *prepared* asynchronously first: the client, the (already atomically consumed)
authorisation code and the user are loaded, then authlib runs synchronously on that preloaded
state, and codes it wants saved are written asynchronously afterwards.

Rules enforced here (security.md §3, §7): authorisation code flow only, PKCE with S256 mandatory,
exact redirect-URI match, single-use codes valid 60 seconds, ID tokens with `acr`/`amr`/`sid`, never
LoA 3.
"""

from __future__ import annotations

import contextvars
import hashlib
import hmac
import logging
import secrets
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

import httpx
from authlib.oauth2.rfc6749 import AuthorizationServer, ClientMixin, OAuth2Request
from authlib.oauth2.rfc6749.errors import InvalidRequestError, OAuth2Error
from authlib.oauth2.rfc6749.grants import AuthorizationCodeGrant
from authlib.oauth2.rfc6749.requests import BasicOAuth2Payload
from authlib.oauth2.rfc6749.util import extract_basic_authorization
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oidc.core import UserInfo
from authlib.oidc.core.grants import OpenIDCode
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jws import JWSRegistry
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from auth.keys import ALG, SigningKeys, key_file
from auth.models import OpClient, OpCode, OpSession
from server.core.context import AppContext, Key
from server.core.models import User

log = logging.getLogger("brygga.idp")

ACR = "urn:brygga:loa:2fa"  # password + TOTP; deliberately not LoA 3 (no hardware token, no identity proofing)
AMR = ["pwd", "otp"]
CODE_TTL = timedelta(seconds=60)
ACCESS_TOKEN_TTL = 300
ID_TOKEN_TTL = 600
LOGOUT_TOKEN_TTL = 120
OP_SESSION_TTL = timedelta(hours=8)
SCOPES = ["openid", "profile", "email"]
BACKCHANNEL_EVENT = "http://schemas.openid.net/event/backchannel-logout"


def sha256(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


# ------------------------------------------------------------------------------- authlib models


@dataclass
class Client(ClientMixin):  # type: ignore[misc]
    client_id: str
    secret_hash: str | None
    redirect_uris: list[str]
    post_logout_redirect_uris: list[str]
    backchannel_logout_uri: str | None

    @classmethod
    def of(cls, row: OpClient) -> Client:
        return cls(
            row.client_id,
            row.secret_hash,
            list(row.redirect_uris),
            list(row.post_logout_redirect_uris),
            row.backchannel_logout_uri,
        )

    def get_client_id(self) -> str:
        return self.client_id

    def get_default_redirect_uri(self) -> str | None:
        return None  # redirect_uri is always required and compared exactly

    def get_allowed_scope(self, scope: str) -> str:
        return " ".join(item for item in (scope or "").split() if item in SCOPES)

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return redirect_uri in self.redirect_uris  # exact string match, no prefixes or wildcards

    def check_client_secret(self, client_secret: str) -> bool:
        return self.secret_hash is not None and hmac.compare_digest(sha256(client_secret), self.secret_hash)

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        if endpoint != "token":
            return True
        if self.secret_hash is None:
            return method == "none"
        return method in ("client_secret_basic", "client_secret_post")

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code"

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type == "authorization_code"


@dataclass
class AuthUser:
    """Who authenticated at the provider, and how."""

    user_id: uuid.UUID
    subject: str
    sid: str
    auth_time: int
    acr: str = ACR
    amr: list[str] = field(default_factory=lambda: list(AMR))


@dataclass
class AuthCode:
    row: OpCode
    code_challenge: str
    code_challenge_method: str

    def get_redirect_uri(self) -> str:
        return self.row.redirect_uri

    def get_scope(self) -> str:
        return self.row.scope

    def get_nonce(self) -> str | None:
        return self.row.nonce

    def get_auth_time(self) -> int:
        return self.row.auth_time

    def get_acr(self) -> str:
        return self.row.acr

    def get_amr(self) -> list[str]:
        return list(self.row.amr)


@dataclass
class Prepared:
    """What one protocol request needs from the database, loaded before authlib runs."""

    clients: dict[str, Client] = field(default_factory=dict)
    code: AuthCode | None = None
    user: User | None = None
    now: datetime | None = None
    saved_codes: list[OpCode] = field(default_factory=list)


_PREPARED: contextvars.ContextVar[Prepared] = contextvars.ContextVar("brygga_idp_prepared")


@contextmanager
def prepared(state: Prepared) -> Iterator[Prepared]:
    token = _PREPARED.set(state)
    try:
        yield state
    finally:
        _PREPARED.reset(token)


class OpRequest(OAuth2Request):  # type: ignore[misc]
    def __init__(self, method: str, uri: str, data: dict[str, str], headers: dict[str, str]) -> None:
        # authlib refuses non-https URIs; transport security is the deployment's job (HSTS when https),
        # and the loopback/test setups run on http, so authlib sees the https form of our own URL.
        parts = urlsplit(uri)
        super().__init__(method, urlunsplit(("https", *parts[1:])), headers=headers)
        self.payload = BasicOAuth2Payload(data)
        self._params = data

    @property
    def args(self) -> dict[str, str]:
        return self._params

    @property
    def form(self) -> dict[str, str]:
        return self._params


# ------------------------------------------------------------------------------- grant + extensions


class CodeGrant(AuthorizationCodeGrant):  # type: ignore[misc]
    TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic", "client_secret_post", "none"]  # noqa: RUF012

    def validate_authorization_request(self) -> str:
        if not self.request.payload.redirect_uri:
            raise InvalidRequestError("Missing 'redirect_uri': it is required and must match exactly.")
        return str(super().validate_authorization_request())

    def save_authorization_code(self, code: str, request: OAuth2Request) -> None:
        state = _PREPARED.get()
        user: AuthUser = request.user
        data = request.payload.data
        assert state.now is not None
        state.saved_codes.append(
            OpCode(
                code_hash=sha256(code),
                client_id=request.client.get_client_id(),
                user_id=user.user_id,
                redirect_uri=request.payload.redirect_uri,
                scope=request.client.get_allowed_scope(request.payload.scope or ""),
                nonce=data.get("nonce"),
                code_challenge=data["code_challenge"],
                code_challenge_method=data.get("code_challenge_method", "S256"),
                sid=user.sid,
                auth_time=user.auth_time,
                acr=user.acr,
                amr=user.amr,
                expires_at=state.now + CODE_TTL,
            )
        )

    def query_authorization_code(self, code: str, client: Client) -> AuthCode | None:
        state = _PREPARED.get()
        found = state.code
        if found is None or found.row.code_hash != sha256(code) or found.row.client_id != client.client_id:
            return None
        assert state.now is not None
        if found.row.expires_at <= state.now:
            return None
        return found

    def delete_authorization_code(self, authorization_code: AuthCode) -> None:
        """Nothing to do: the code was deleted atomically before authlib ran (single use even under races)."""

    def authenticate_user(self, authorization_code: AuthCode) -> AuthUser | None:
        user = _PREPARED.get().user
        if user is None or user.disabled or user.id != authorization_code.row.user_id:
            return None
        row = authorization_code.row
        return AuthUser(user.id, user.subject, row.sid, row.auth_time, row.acr, list(row.amr))


class S256Only(CodeChallenge):  # type: ignore[misc]
    """PKCE is mandatory for every client, and only with S256."""

    SUPPORTED_CODE_CHALLENGE_METHOD = ["S256"]  # noqa: RUF012

    def validate_code_challenge(self, grant: CodeGrant, redirect_uri: str) -> None:
        data = grant.request.payload.data
        if not data.get("code_challenge"):
            raise InvalidRequestError("PKCE is required: send code_challenge with code_challenge_method=S256.")
        if data.get("code_challenge_method") != "S256":
            raise InvalidRequestError("Only code_challenge_method=S256 is accepted.")
        super().validate_code_challenge(grant, redirect_uri)


class BryggaOpenIDCode(OpenIDCode):  # type: ignore[misc]
    DEFAULT_EXPIRES_IN = ID_TOKEN_TTL

    def __init__(self, provider: Provider) -> None:
        super().__init__(require_nonce=False)
        self.provider = provider

    def exists_nonce(self, nonce: str, request: OAuth2Request) -> bool:
        return False  # RPs bind nonces to their own sessions; codes are single use here

    def resolve_client_private_key(self, client: Client) -> Any:
        return self.provider.keys.current

    def get_client_algorithm(self, client: Client) -> str:
        return ALG

    def get_encode_header(self, client: Client) -> dict[str, str]:
        return {"alg": ALG, "kid": self.provider.keys.kid, "typ": "JWT"}

    def get_client_claims(self, client: Client) -> dict[str, Any]:
        return {"iss": self.provider.issuer, "aud": [client.get_client_id()], "azp": client.get_client_id()}

    def get_authorization_code_claims(self, authorization_code: AuthCode) -> dict[str, Any]:
        claims: dict[str, Any] = super().get_authorization_code_claims(authorization_code)
        claims["sid"] = authorization_code.row.sid
        return claims

    def generate_user_info(self, user: AuthUser, scope: str) -> UserInfo:
        person = _PREPARED.get().user
        assert person is not None
        return self.provider.user_info(person, scope)


class Server(AuthorizationServer):  # type: ignore[misc]
    def __init__(self, provider: Provider) -> None:
        super().__init__(scopes_supported=SCOPES)
        self.provider = provider
        self.register_grant(CodeGrant, [S256Only(required=True), BryggaOpenIDCode(provider)])
        self.register_token_generator("default", provider.generate_access_token)

    def query_client(self, client_id: str) -> Client | None:
        return _PREPARED.get().clients.get(client_id)

    def create_oauth2_request(self, request: OpRequest) -> OpRequest:
        return request

    def handle_response(self, status: int, body: Any, headers: Any) -> tuple[int, Any, dict[str, str]]:
        return status, body, dict(headers or [])

    def save_token(self, token: dict[str, Any], request: OAuth2Request) -> None:
        """Access tokens are short-lived signed JWTs; nothing is stored."""

    def send_signal(self, name: str, *args: Any, **kwargs: Any) -> None:
        return None


# ------------------------------------------------------------------------------- the provider

LogoutSink = Callable[[str], Awaitable[bool]]  # in-process delivery of a logout token to our own RP
IDP: Key[Provider] = Key("idp")  # the identity plugin starts the provider and keeps it here


class Provider:
    def __init__(self, ctx: AppContext) -> None:
        self.ctx = ctx
        self.issuer = ctx.settings.builtin_issuer
        self.keys = SigningKeys(key_file(ctx.settings.data_dir))
        self.server = Server(self)
        self.local_logout: dict[str, LogoutSink] = {}  # backchannel URI -> in-process handler
        self.http = httpx.AsyncClient(timeout=5, follow_redirects=False)

    async def close(self) -> None:
        await self.http.aclose()

    def url(self, path: str) -> str:
        return self.issuer + path

    def discovery(self) -> dict[str, Any]:
        return {
            "issuer": self.issuer,
            "authorization_endpoint": self.url("/authorize"),
            "token_endpoint": self.url("/token"),
            "userinfo_endpoint": self.url("/userinfo"),
            "jwks_uri": self.url("/jwks"),
            "end_session_endpoint": self.url("/logout"),
            "response_types_supported": ["code"],
            "response_modes_supported": ["query"],
            "grant_types_supported": ["authorization_code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": [ALG],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
            "code_challenge_methods_supported": ["S256"],
            "scopes_supported": SCOPES,
            "claims_supported": [
                "sub",
                "iss",
                "aud",
                "exp",
                "iat",
                "auth_time",
                "nonce",
                "acr",
                "amr",
                "sid",
                "name",
                "preferred_username",
                "email",
                "title",
                "employeeHsaId",
            ],
            "acr_values_supported": [ACR],
            "backchannel_logout_supported": True,
            "backchannel_logout_session_supported": True,
            "authorization_response_iss_parameter_supported": True,
            "ui_locales_supported": ["sv", "en"],
        }

    # --- tokens

    def sign(self, claims: dict[str, Any], typ: str = "JWT") -> str:
        header = {"alg": ALG, "kid": self.keys.kid, "typ": typ}
        return str(jwt.encode(header, claims, self.keys.current, algorithms=[ALG]))

    def verify(self, token: str) -> dict[str, Any] | None:
        """Claims of a token this provider signed (signature and issuer only), else None."""
        try:
            decoded = jwt.decode(token, self.keys.verification_keys(), registry=JWSRegistry(algorithms=[ALG]))
        except (JoseError, ValueError):
            return None
        claims = dict(decoded.claims)
        return claims if claims.get("iss") == self.issuer else None

    def generate_access_token(
        self,
        grant_type: str,
        client: Client,
        user: AuthUser | None = None,
        scope: str | None = None,
        expires_in: int | None = None,
        include_refresh_token: bool = True,
    ) -> dict[str, Any]:
        assert user is not None
        now = int(time.time())
        claims = {
            "iss": self.issuer,
            "sub": user.subject,
            "aud": self.url("/userinfo"),
            "client_id": client.get_client_id(),
            "scope": scope or "",
            "iat": now,
            "exp": now + ACCESS_TOKEN_TTL,
            "jti": secrets.token_urlsafe(12),
        }
        return {
            "token_type": "Bearer",
            "access_token": self.sign(claims, "at+jwt"),
            "expires_in": ACCESS_TOKEN_TTL,
            "scope": scope or "",
        }

    def user_info(self, person: User, scope: str) -> UserInfo:
        scopes = set((scope or "").split())
        info = UserInfo(sub=person.subject)
        if "profile" in scopes:
            info["name"] = person.display_name
            if person.login:
                info["preferred_username"] = person.login
            if person.title:
                info["title"] = person.title
            if person.hsa_id:
                info["employeeHsaId"] = person.hsa_id
        if "email" in scopes and person.email:
            info["email"] = person.email
        return info

    # --- database helpers

    async def load_client(self, session: AsyncSession, client_id: str | None) -> Client | None:
        if not client_id:
            return None
        row = await session.get(OpClient, client_id)
        return Client.of(row) if row else None

    async def register_client(self, session: AsyncSession, client_id: str, **options: Any) -> None:
        await self.register_client_row(session, client_id, **options)

    @staticmethod
    async def register_client_row(
        session: AsyncSession,
        client_id: str,
        *,
        name: str,
        redirect_uris: list[str],
        post_logout_redirect_uris: list[str] | None = None,
        backchannel_logout_uri: str | None = None,
        secret: str | None = None,
    ) -> None:
        """Create or update a client registration (exact redirect URIs)."""
        row = await session.get(OpClient, client_id)
        if row is None:
            row = OpClient(client_id=client_id)
            session.add(row)
        row.name = name
        row.redirect_uris = redirect_uris
        row.post_logout_redirect_uris = post_logout_redirect_uris or []
        row.backchannel_logout_uri = backchannel_logout_uri
        row.secret_hash = sha256(secret) if secret else None
        await session.flush()

    # --- authorisation endpoint

    def _request(self, method: str, path: str, data: dict[str, str], headers: dict[str, str]) -> OpRequest:
        return OpRequest(method, self.url(path), data, headers)

    async def check_authorization(self, query: dict[str, str]) -> Client:
        """Validate an authorisation request before showing the login page. Raises OAuth2Error."""
        async with self.ctx.db.transaction() as session:
            client = await self.load_client(session, query.get("client_id"))
        state = Prepared(clients={client.client_id: client} if client else {}, now=self.ctx.clock())
        with prepared(state):
            self.server.get_consent_grant(self._request("GET", "/authorize", query, {}), end_user=None)
        assert client is not None
        return client

    async def authorize(self, query: dict[str, str], user: AuthUser) -> tuple[int, Any, dict[str, str]]:
        """Issue a code to an authenticated user; returns the redirect (or an error) response."""
        async with self.ctx.db.transaction() as session:
            client = await self.load_client(session, query.get("client_id"))
            state = Prepared(clients={client.client_id: client} if client else {}, now=self.ctx.clock())
            with prepared(state):
                request = self._request("GET", "/authorize", query, {})
                try:
                    grant = self.server.get_consent_grant(request, end_user=user)
                except OAuth2Error as error:
                    return self.server.handle_error_response(request, error)  # type: ignore[no-any-return]
                status, body, headers = self.server.create_authorization_response(
                    request=grant.request, grant_user=user, grant=grant
                )
            for code in state.saved_codes:
                session.add(code)
            if client is not None and state.saved_codes:
                op_session = await self.op_session_by_sid(session, user.sid)
                if op_session is not None and client.client_id not in op_session.client_ids:
                    op_session.client_ids = [*op_session.client_ids, client.client_id]
        if "Location" in headers:
            headers["Location"] = _add_params(headers["Location"], {"iss": self.issuer})  # RFC 9207
        return status, body, headers

    # --- token endpoint

    async def token(self, form: dict[str, str], headers: dict[str, str]) -> tuple[int, Any, dict[str, str]]:
        client_id, _secret = extract_basic_authorization(headers)
        client_id = client_id or form.get("client_id")
        code = form.get("code") or ""
        async with self.ctx.db.transaction() as session:
            client = await self.load_client(session, client_id)
            state = Prepared(clients={client.client_id: client} if client else {}, now=self.ctx.clock())
            if code:
                # Consume first, atomically: a code can be redeemed once, even by racing requests.
                result = await session.execute(delete(OpCode).where(OpCode.code_hash == sha256(code)).returning(OpCode))
                row = result.scalar_one_or_none()
                if row is not None:
                    state.code = AuthCode(row, row.code_challenge, row.code_challenge_method)
                    state.user = await session.get(User, row.user_id)
            with prepared(state):
                status, body, response_headers = self.server.create_token_response(
                    self._request("POST", "/token", form, headers)
                )
        response_headers.setdefault("Cache-Control", "no-store")
        return status, body, response_headers

    async def userinfo(self, access_token: str) -> dict[str, Any] | None:
        claims = self.verify(access_token)
        if claims is None or claims.get("aud") != self.url("/userinfo") or int(claims.get("exp", 0)) < time.time():
            return None
        async with self.ctx.db.transaction() as session:
            person = (
                await session.execute(select(User).where(User.issuer == "local", User.subject == claims["sub"]))
            ).scalar_one_or_none()
            if person is None or person.disabled:
                return None
            return dict(self.user_info(person, str(claims.get("scope", ""))))

    # --- provider sessions and logout

    async def create_op_session(self, session: AsyncSession, user: User) -> tuple[str, AuthUser]:
        secret = secrets.token_urlsafe(32)
        now = self.ctx.clock()
        sid = secrets.token_urlsafe(16)
        session.add(
            OpSession(
                id_hash=sha256(secret),
                sid=sid,
                user_id=user.id,
                auth_time=now,
                expires_at=now + OP_SESSION_TTL,
                acr=ACR,
                amr=list(AMR),
                client_ids=[],
            )
        )
        await session.flush()
        return secret, AuthUser(user.id, user.subject, sid, int(now.timestamp()))

    async def op_session_by_sid(self, session: AsyncSession, sid: str) -> OpSession | None:

        return (await session.execute(select(OpSession).where(OpSession.sid == sid))).scalar_one_or_none()

    async def resume(self, secret: str) -> AuthUser | None:
        """The user behind a live provider-session cookie (single sign-on), else None."""
        if not secret:
            return None
        async with self.ctx.db.transaction() as session:
            row = await session.get(OpSession, sha256(secret))
            if row is None or row.expires_at <= self.ctx.clock():
                return None
            user = await session.get(User, row.user_id)
            if user is None or user.disabled:
                return None
            return AuthUser(user.id, user.subject, row.sid, int(row.auth_time.timestamp()), row.acr, list(row.amr))

    async def end_session(self, *, secret: str | None, sid: str | None) -> None:
        """End a provider session (by cookie or sid) and notify every client it signed in to."""
        async with self.ctx.db.transaction() as session:
            row = await session.get(OpSession, sha256(secret)) if secret else None
            if row is None and sid:
                row = await self.op_session_by_sid(session, sid)
            if row is None:
                return
            await session.delete(row)
            user = await session.get(User, row.user_id)
            clients = [await self.load_client(session, client_id) for client_id in row.client_ids]
        if user is not None:
            await self.send_backchannel_logout(user.subject, row.sid, [c for c in clients if c is not None])

    async def end_user_sessions(self, user: User) -> None:
        """Logout everywhere / account disabled: end all the user's provider sessions."""

        async with self.ctx.db.transaction() as session:
            rows = list((await session.execute(select(OpSession).where(OpSession.user_id == user.id))).scalars())
        for row in rows:
            await self.end_session(secret=None, sid=row.sid)

    def logout_token(self, client: Client, subject: str, sid: str) -> str:
        now = int(time.time())
        claims = {
            "iss": self.issuer,
            "aud": client.client_id,
            "iat": now,
            "exp": now + LOGOUT_TOKEN_TTL,
            "jti": secrets.token_urlsafe(16),
            "sub": subject,
            "sid": sid,
            "events": {BACKCHANNEL_EVENT: {}},
        }
        return self.sign(claims, "logout+jwt")

    async def send_backchannel_logout(self, subject: str, sid: str, clients: list[Client]) -> None:
        for client in clients:
            uri = client.backchannel_logout_uri
            if not uri:
                continue
            token = self.logout_token(client, subject, sid)
            try:
                local = self.local_logout.get(uri)
                if local is not None:
                    await local(token)
                else:
                    response = await self.http.post(uri, data={"logout_token": token})
                    if response.status_code >= 400:
                        log.warning("back-channel logout refused", extra={"client": client.client_id})
            except Exception as exc:  # one unreachable client must not stop the others
                log.warning(
                    "back-channel logout failed", extra={"client": client.client_id, "error": type(exc).__name__}
                )


def _add_params(uri: str, params: dict[str, str]) -> str:
    parts = urlsplit(uri)
    query = f"{parts.query}&{urlencode(params)}" if parts.query else urlencode(params)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, parts.fragment))
