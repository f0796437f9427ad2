"""Brygga as an OpenID Connect relying party, from authlib/joserfc primitives (authlib has no aiohttp client).

Authorization code flow with PKCE (S256); `state`, `nonce` and the verifier live server-side in a
pre-login session; the issuer is pinned from discovery; ID-token algorithms come from an allow-list;
the stored nonce is always checked (authlib skips the check when it is given None); `acr` can be
required. Back-channel logout tokens are checked in full (OIDC Back-Channel Logout 1.0 §2.6).
"""

from __future__ import annotations

import base64
import hmac
import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlencode

import httpx
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from authlib.oidc.core import CodeIDToken
from joserfc import jws, jwt
from joserfc.errors import InvalidKeyIdError, JoseError, MissingKeyError
from joserfc.jwk import KeySet
from joserfc.jws import JWSRegistry

from server.core.context import Key
from server.core.errors import Problem

BACKCHANNEL_EVENT = "http://schemas.openid.net/event/backchannel-logout"
LEEWAY = 60
METADATA_TTL = 3600


class LoginFailed(Problem):
    """The provider's answer cannot be trusted or accepted; the user must start again."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(code, detail, status=400)


class ProviderAccess(Protocol):
    """How the relying party talks to its provider: over HTTP, or in-process for the built-in one."""

    async def get_json(self, url: str, headers: dict[str, str] | None = None) -> dict[str, Any]: ...

    async def post_form(self, url: str, form: dict[str, str], headers: dict[str, str]) -> tuple[int, Any]: ...


class HttpAccess:
    def __init__(self) -> None:
        self.client = httpx.AsyncClient(timeout=10, follow_redirects=False)

    async def get_json(self, url: str, headers: dict[str, str] | None = None) -> dict[str, Any]:
        response = await self.client.get(url, headers={"Accept": "application/json", **(headers or {})})
        response.raise_for_status()
        data: dict[str, Any] = response.json()
        return data

    async def post_form(self, url: str, form: dict[str, str], headers: dict[str, str]) -> tuple[int, Any]:
        response = await self.client.post(url, data=form, headers={"Accept": "application/json", **headers})
        try:
            return response.status_code, response.json()
        except ValueError:
            return response.status_code, None

    async def close(self) -> None:
        await self.client.aclose()


@dataclass
class RpConfig:
    issuer: str
    client_id: str
    client_secret: str
    redirect_uri: str
    post_logout_redirect_uri: str
    scopes: str
    required_acr: list[str]
    allowed_algs: list[str]


class RelyingParty:
    def __init__(self, config: RpConfig, access: ProviderAccess, clock: Callable[[], float] = time.time) -> None:
        self.config = config
        self.access = access
        self.clock = clock
        self._metadata: dict[str, Any] | None = None
        self._metadata_at = 0.0
        self._jwks: dict[str, Any] | None = None
        self._jwks_at = 0.0

    @property
    def issuer(self) -> str:
        return self.config.issuer

    async def metadata(self) -> dict[str, Any]:
        if self._metadata is None or self.clock() - self._metadata_at > METADATA_TTL:
            url = self.config.issuer.rstrip("/") + "/.well-known/openid-configuration"
            try:
                data = await self.access.get_json(url)
            except (httpx.HTTPError, ValueError) as exc:
                raise Problem(
                    "idp_unreachable", "The identity provider does not answer; try again later.", status=502
                ) from exc
            if data.get("issuer") != self.config.issuer:  # issuer pinned: discovery must name itself exactly
                raise Problem(
                    "idp_misconfigured", "The identity provider's discovery names another issuer.", status=502
                )
            self._metadata, self._metadata_at = data, self.clock()
        return self._metadata

    async def jwks(self, *, force: bool = False) -> KeySet:
        age = self.clock() - self._jwks_at
        # A forced refetch (unknown kid) happens at most every 10 s, so forged kids cannot hammer the provider.
        if self._jwks is None or age > METADATA_TTL or (force and age > 10):
            self._jwks = await self.access.get_json((await self.metadata())["jwks_uri"])
            self._jwks_at = self.clock()
        assert self._jwks is not None
        return KeySet.import_key_set(self._jwks)  # type: ignore[arg-type]

    # --- login

    async def begin(self) -> tuple[str, dict[str, Any]]:
        """The provider URL to send the browser to, and what the pre-login session must remember."""
        metadata = await self.metadata()
        state, nonce, verifier = secrets.token_urlsafe(24), secrets.token_urlsafe(24), secrets.token_urlsafe(48)
        params = {
            "response_type": "code",
            "client_id": self.config.client_id,
            "redirect_uri": self.config.redirect_uri,
            "scope": self.config.scopes,
            "state": state,
            "nonce": nonce,
            "code_challenge": create_s256_code_challenge(verifier),
            "code_challenge_method": "S256",
        }
        if self.config.required_acr:
            acr = self.config.required_acr
            rule: dict[str, Any] = {"essential": True}
            rule.update({"value": acr[0]} if len(acr) == 1 else {"values": acr})
            params["claims"] = json.dumps({"id_token": {"acr": rule}})
            params["acr_values"] = " ".join(acr)
        url = metadata["authorization_endpoint"] + "?" + urlencode(params)
        return url, {"state": state, "nonce": nonce, "verifier": verifier, "issuer": metadata["issuer"]}

    async def finish(self, pending: dict[str, Any], params: dict[str, str]) -> tuple[dict[str, Any], str]:
        """Check the callback, redeem the code, validate the ID token; returns (claims, raw id_token)."""
        if not hmac.compare_digest(params.get("state", "").encode(), str(pending.get("state", "")).encode()):
            raise LoginFailed("state_mismatch", "The login answer does not belong to this browser; log in again.")
        if params.get("iss") is not None and params["iss"] != pending.get("issuer"):  # RFC 9207 mix-up defence
            raise LoginFailed("issuer_mismatch", "The login answer came from another identity provider.")
        if params.get("error"):
            raise LoginFailed("login_refused", "The identity provider did not log you in; try again.")
        code = params.get("code")
        if not code:
            raise LoginFailed("code_missing", "The identity provider sent no authorisation code; log in again.")
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": self.config.redirect_uri,
            "code_verifier": str(pending["verifier"]),
        }
        headers: dict[str, str] = {}
        if self.config.client_secret:
            raw = f"{self.config.client_id}:{self.config.client_secret}".encode()
            headers["Authorization"] = "Basic " + base64.b64encode(raw).decode()
        else:
            form["client_id"] = self.config.client_id
        try:
            status, body = await self.access.post_form((await self.metadata())["token_endpoint"], form, headers)
        except httpx.HTTPError as exc:
            raise Problem(
                "idp_unreachable", "The identity provider does not answer; try again later.", status=502
            ) from exc
        if status != 200 or not isinstance(body, dict) or not isinstance(body.get("id_token"), str):
            raise LoginFailed("token_refused", "The identity provider refused to redeem the login; log in again.")
        claims = await self.validate_id_token(body["id_token"], str(pending["nonce"]), body.get("access_token"))
        if isinstance(body.get("access_token"), str):
            claims = {**await self.userinfo(body["access_token"], str(claims["sub"])), **claims}
        return claims, body["id_token"]

    async def userinfo(self, access_token: str, subject: str) -> dict[str, Any]:
        """Profile claims (name, employeeHsaId) many providers keep out of the ID token; same `sub` only."""
        endpoint = (await self.metadata()).get("userinfo_endpoint")
        if not endpoint:
            return {}
        try:
            info = await self.access.get_json(str(endpoint), {"Authorization": f"Bearer {access_token}"})
        except (httpx.HTTPError, ValueError):
            return {}
        return (
            {key: info[key] for key in ("name", "email", "employeeHsaId", "title") if key in info}
            if (info.get("sub") == subject)
            else {}
        )

    async def _verified(self, token: str) -> tuple[dict[str, Any], dict[str, Any]]:
        """Signature check with the provider's keys and the algorithm allow-list; (header, claims)."""
        allowed = [alg for alg in self.config.allowed_algs if alg.lower() != "none" and not alg.startswith("HS")]
        try:
            header = jws.extract_compact(token.encode()).protected
        except (JoseError, ValueError):
            raise LoginFailed("token_invalid", "The token is malformed.") from None
        if header.get("alg") not in allowed:
            raise LoginFailed("token_invalid", "The token is signed with an algorithm that is not accepted.")
        registry = JWSRegistry(algorithms=allowed)
        for force in (False, True):  # unknown kid: the provider may have rotated; refetch the JWKS once
            keys = await self.jwks(force=force)
            try:
                decoded = jwt.decode(token, keys, algorithms=allowed, registry=registry)
                return dict(decoded.header), dict(decoded.claims)
            except (InvalidKeyIdError, MissingKeyError):
                continue
            except (JoseError, ValueError):
                break
        raise LoginFailed("token_invalid", "The token signature does not verify.")

    async def validate_id_token(self, token: str, nonce: str, access_token: str | None) -> dict[str, Any]:
        if not nonce:
            raise LoginFailed("nonce_missing", "No login is in progress; log in again.")
        header, claims = await self._verified(token)
        options = {
            "iss": {"essential": True, "value": self.config.issuer},
            "aud": {"essential": True, "value": self.config.client_id},
            "nonce": {"essential": True},
        }
        params = {"nonce": nonce, "client_id": self.config.client_id}
        if access_token:
            params["access_token"] = access_token
        try:
            CodeIDToken(claims, header, options, params).validate(now=int(self.clock()), leeway=LEEWAY)
        except (JoseError, ValueError) as exc:
            raise LoginFailed("token_invalid", f"The ID token is not valid ({type(exc).__name__}).") from None
        if not hmac.compare_digest(str(claims.get("nonce", "")).encode(), nonce.encode()):
            raise LoginFailed("token_invalid", "The ID token does not belong to this login (nonce).")
        if self.config.required_acr and claims.get("acr") not in self.config.required_acr:
            raise LoginFailed(
                "acr_not_accepted", "This login method is not strong enough here; log in with e.g. a SITHS card."
            )
        return claims

    async def validate_logout_token(self, token: str) -> dict[str, Any]:
        header, claims = await self._verified(token)
        if str(header.get("typ", "")).lower() not in ("logout+jwt", "application/logout+jwt"):
            raise LoginFailed("logout_token_invalid", "The logout token is not typed logout+jwt.")
        now = self.clock()
        audience = claims.get("aud")
        audiences = audience if isinstance(audience, list) else [audience]
        events = claims.get("events")
        problems = [
            claims.get("iss") != self.config.issuer,
            self.config.client_id not in audiences,
            not isinstance(claims.get("iat"), int | float) or claims["iat"] > now + LEEWAY,
            "exp" in claims and (not isinstance(claims["exp"], int | float) or claims["exp"] < now - LEEWAY),
            not isinstance(events, dict) or not isinstance(events.get(BACKCHANNEL_EVENT), dict),
            "nonce" in claims,
            not claims.get("sid") and not claims.get("sub"),
            not isinstance(claims.get("jti"), str) or not claims["jti"],
        ]
        if any(problems):
            raise LoginFailed("logout_token_invalid", "The logout token fails the back-channel logout checks.")
        return claims

    async def logout_url(self, id_token: str | None) -> str | None:
        metadata = await self.metadata()
        endpoint = metadata.get("end_session_endpoint")
        if not endpoint:
            return None
        params = {"post_logout_redirect_uri": self.config.post_logout_redirect_uri, "client_id": self.config.client_id}
        if id_token:
            params["id_token_hint"] = id_token
        return str(endpoint) + "?" + urlencode(params)


RP: Key[RelyingParty] = Key("rp")  # Brygga as relying party; the identity plugin keeps it here
