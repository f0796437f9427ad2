"""Brygga's relying party refuses forged ID tokens from a provider it is pointed at.

A small fake provider (here, not an independent peer: it must misbehave on purpose) answers the
real login flow; its token endpoint returns ID tokens with one thing wrong at a time.
"""

from __future__ import annotations

import base64
import json
import time
from urllib.parse import urlencode

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from joserfc import jwt
from joserfc.jwk import RSAKey

from tests.conftest import free_port
from tests.identity.helpers import start_live


def b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


class FakeProvider:
    def __init__(self, port: int) -> None:
        self.issuer = f"http://127.0.0.1:{port}"
        self.port = port
        self.key = RSAKey.generate_key(2048, parameters={"kid": "k1", "alg": "RS256", "use": "sig"})
        self.other_key = RSAKey.generate_key(2048, parameters={"kid": "k1", "alg": "RS256", "use": "sig"})
        self.mode = "good"
        self.nonces: list[str] = []
        self.client_id = "brygga"

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/.well-known/openid-configuration", self.discovery)
        app.router.add_get("/jwks", self.jwks)
        app.router.add_get("/authorize", self.authorize)
        app.router.add_post("/token", self.token)
        return app

    async def discovery(self, request: web.Request) -> web.Response:
        return web.json_response({
            "issuer": self.issuer, "authorization_endpoint": self.issuer + "/authorize",
            "token_endpoint": self.issuer + "/token", "jwks_uri": self.issuer + "/jwks",
            "response_types_supported": ["code"], "id_token_signing_alg_values_supported": ["RS256"],
        })  # fmt: skip

    async def jwks(self, request: web.Request) -> web.Response:
        return web.json_response({"keys": [self.key.as_dict(private=False)]})

    async def authorize(self, request: web.Request) -> web.Response:
        self.nonces.append(request.query["nonce"])
        target = request.query["redirect_uri"] + "?" + urlencode({"code": "c0de", "state": request.query["state"]})
        return web.Response(status=302, headers={"Location": target})

    async def token(self, request: web.Request) -> web.Response:
        now = int(time.time())
        claims = {
            "iss": self.issuer, "sub": "forged-or-not", "aud": self.client_id, "iat": now, "exp": now + 300,
            "nonce": self.nonces[-1], "name": "Test Testsson",
        }  # fmt: skip
        header = {"alg": "RS256", "kid": "k1"}
        key = self.key
        if self.mode == "wrong_iss":
            claims["iss"] = "https://evil.example"
        elif self.mode == "wrong_aud":
            claims["aud"] = "someone-else"
        elif self.mode == "expired":
            claims.update(iat=now - 3600, exp=now - 1800)
        elif self.mode == "replayed_nonce":
            claims["nonce"] = self.nonces[0]
        elif self.mode == "no_nonce":
            del claims["nonce"]
        elif self.mode == "bad_signature":
            key = self.other_key
        if self.mode == "alg_none":
            id_token = f"{b64({'alg': 'none', 'typ': 'JWT'})}.{b64(claims)}."
        else:
            id_token = jwt.encode(header, claims, key, algorithms=["RS256"])
        return web.json_response({"access_token": "opaque", "token_type": "Bearer", "id_token": id_token})


@pytest.fixture
async def setup(tmp_path):
    port = free_port()
    fake = FakeProvider(port)
    server = TestServer(fake.app(), host="127.0.0.1", port=port)
    await server.start_server()
    live = await start_live(tmp_path / "data", oidc_issuer=fake.issuer, oidc_client_id="brygga", oidc_client_secret="s")
    browser = live.browser()
    try:
        yield live, fake, browser
    finally:
        await browser.close()
        await live.client.close()
        await server.close()


async def login(browser) -> int:
    async with browser.get("/auth/login") as response:
        return response.status


async def logged_in(browser) -> bool:
    return bool((await (await browser.get("/api/v1/session")).json())["authenticated"])


async def test_a_correct_token_logs_in(setup):
    _live, _fake, browser = setup
    assert await login(browser) == 200
    assert await logged_in(browser)


@pytest.mark.parametrize(
    "mode", ["wrong_iss", "wrong_aud", "alg_none", "bad_signature", "expired", "no_nonce", "replayed_nonce"]
)
async def test_forged_id_token_is_refused(setup, mode):
    _live, fake, browser = setup
    assert await login(browser) == 200  # a genuine login first, so a nonce exists to replay
    browser.session.cookie_jar.clear()
    fake.mode = mode
    assert await login(browser) == 400
    assert not await logged_in(browser)


async def test_callback_without_pre_login_session_or_with_foreign_state_is_refused(setup):
    _live, _fake, browser = setup
    direct = await browser.get("/auth/callback?code=c0de&state=whatever")
    assert direct.status == 400
    start = await browser.get("/auth/login", allow_redirects=False)
    assert start.status == 302
    swapped = await browser.get("/auth/callback?code=c0de&state=attacker-state")
    assert swapped.status == 400
    assert not await logged_in(browser)
