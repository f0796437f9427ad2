"""The built-in OpenID Provider, checked by an independent client (npm openid-client) and by hand."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import secrets
import shutil
from datetime import timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

import pyotp
import pytest

from auth.provider import IDP, Provider
from tests.conftest import require_service
from tests.identity.helpers import PASSWORD, form_fields, local_user

NODE_DIR = Path(__file__).resolve().parents[1] / "node"


async def register(live, client_id: str, redirect_uri: str, secret: str | None = None, backchannel=None) -> None:
    async with live.ctx.db.transaction() as session:
        await Provider.register_client_row(
            session,
            client_id,
            name=client_id,
            redirect_uris=[redirect_uri],
            post_logout_redirect_uris=[redirect_uri.rsplit("/", 1)[0] + "/bye"],
            backchannel_logout_uri=backchannel,
            secret=secret,
        )


@pytest.mark.slow
async def test_openid_client_completes_code_flow_against_builtin_provider(live):
    require_service(shutil.which("node") is not None and (NODE_DIR / "node_modules").is_dir(), "node + tests/node")
    _, totp = await local_user(live.ctx, "olof")
    secret = secrets.token_urlsafe(24)
    redirect = "http://127.0.0.1:9/rp/callback"
    await register(live, "node-rp", redirect, secret)
    issuer = live.base + "/idp"
    process = await asyncio.create_subprocess_exec(
        "node", "openid_client_login.mjs", issuer, "node-rp", secret, redirect, "olof", PASSWORD,
        pyotp.TOTP(totp).now(),
        cwd=NODE_DIR, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0, err.decode()
    result = json.loads(out)
    claims = result["claims"]
    assert claims["iss"] == issuer and claims["aud"] in ("node-rp", ["node-rp"])
    assert claims["acr"] == "urn:brygga:loa:2fa" and "loa3" not in claims["acr"]
    assert claims["amr"] == ["pwd", "otp"] and claims["sid"]
    assert result["userinfo"]["preferred_username"] == "olof"
    assert result["replay"] == "invalid_grant"


def pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


async def code_for(live, redirect: str, extra: dict[str, str] | None = None, totp: str = ""):
    """Log in at the provider's form and return the redirect response (carrying the code)."""
    verifier, challenge = pkce()
    params = {
        "response_type": "code", "client_id": "rp", "redirect_uri": redirect, "scope": "openid",
        "state": "s1", "nonce": "n1", "code_challenge": challenge, "code_challenge_method": "S256", **(extra or {}),
    }  # fmt: skip
    page = await live.client.get("/idp/authorize?" + urlencode(params), allow_redirects=False)
    if page.status != 200:
        return page, verifier
    fields = form_fields(await page.text())
    answer = await live.client.post(
        "/idp/login",
        data={**fields, "login": "petra", "password": PASSWORD, "code": pyotp.TOTP(totp).now()},
        allow_redirects=False,
    )
    return answer, verifier


async def redeem(live, code: str, verifier: str | None, redirect: str):
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect, "client_id": "rp"}
    if verifier:
        form["code_verifier"] = verifier
    return await live.client.post("/idp/token", data=form)


async def test_codes_are_single_use_short_lived_pkce_bound_and_redirects_exact(live):
    _, totp = await local_user(live.ctx, "petra")
    redirect = "https://rp.example/cb"
    await register(live, "rp", redirect)

    # Exact redirect URI: a prefix/suffix variant is refused without redirecting anywhere.
    bad, _ = await code_for(live, redirect + "/../evil", totp=totp)
    assert bad.status == 400 and "rp.example" not in bad.headers.get("Location", "")
    # PKCE is mandatory, and only S256.
    no_pkce = await live.client.get(
        "/idp/authorize?" + urlencode({"response_type": "code", "client_id": "rp", "redirect_uri": redirect,
                                       "scope": "openid", "state": "x"}),
        allow_redirects=False,
    )  # fmt: skip
    assert no_pkce.status == 302 and "error=invalid_request" in no_pkce.headers["Location"]
    plain, _ = await code_for(live, redirect, {"code_challenge_method": "plain"}, totp=totp)
    assert plain.status == 302 and "error=invalid_request" in plain.headers["Location"]

    answer, verifier = await code_for(live, redirect, totp=totp)
    assert answer.status == 302
    query = parse_qs(urlsplit(answer.headers["Location"]).query)
    assert query["iss"] == [live.base + "/idp"] and query["state"] == ["s1"]
    code = query["code"][0]
    assert (await redeem(live, code, "wrong-verifier-" + "x" * 40, redirect)).status == 400
    # A failed attempt burns the code too: codes are consumed before anything else is checked.
    assert (await redeem(live, code, verifier, redirect)).status == 400

    # A fresh code (provider session: no second form) works once, then never again.
    verifier, challenge = pkce()
    params = {"response_type": "code", "client_id": "rp", "redirect_uri": redirect, "scope": "openid",
              "state": "s2", "nonce": "n2", "code_challenge": challenge, "code_challenge_method": "S256"}  # fmt: skip
    sso = await live.client.get("/idp/authorize?" + urlencode(params), allow_redirects=False)
    code = parse_qs(urlsplit(sso.headers["Location"]).query)["code"][0]
    ok = await redeem(live, code, verifier, redirect)
    assert ok.status == 200, await ok.text()
    body = await ok.json()
    assert body["id_token"] and body["token_type"] == "Bearer"
    assert (await redeem(live, code, verifier, redirect)).status == 400

    # Codes expire after 60 seconds.
    sso = await live.client.get("/idp/authorize?" + urlencode({**params, "state": "s3"}), allow_redirects=False)
    code = parse_qs(urlsplit(sso.headers["Location"]).query)["code"][0]
    real_clock = live.ctx.clock
    live.ctx.clock = lambda: real_clock() + timedelta(seconds=61)
    try:
        late = await redeem(live, code, verifier, redirect)
    finally:
        live.ctx.clock = real_clock
    assert late.status == 400 and (await late.json())["error"] == "invalid_grant"


async def test_discovery_and_jwks_and_key_rotation(live, tmp_path):
    discovery = await (await live.client.get("/idp/.well-known/openid-configuration")).json()
    assert discovery["issuer"] == live.base + "/idp"
    assert discovery["code_challenge_methods_supported"] == ["S256"]
    assert discovery["backchannel_logout_supported"] is True
    assert all("loa3" not in value for value in discovery["acr_values_supported"])
    keys = (await (await live.client.get("/idp/jwks")).json())["keys"]
    assert len(keys) == 1 and "d" not in keys[0] and keys[0]["kid"]
    key_file = live.settings.data_dir / "keys" / "idp_jwks.json"
    assert oct(key_file.stat().st_mode & 0o777) == "0o600"

    import os
    import subprocess
    import sys

    env = {**os.environ, "BRYGGA_DATA_DIR": str(live.settings.data_dir)}
    rotated = subprocess.run(
        [sys.executable, "-m", "server", "idp", "rotate-keys"], env=env, capture_output=True, text=True, timeout=60
    )
    assert rotated.returncode == 0, rotated.stderr
    await asyncio.sleep(1.1)  # the running server re-reads the key file at most once a second
    after = (await (await live.client.get("/idp/jwks")).json())["keys"]
    assert len(after) == 2 and after[1]["kid"] == keys[0]["kid"]  # old key still published
    assert live.ctx.need(IDP).keys.kid == after[0]["kid"]  # new key signs


async def test_many_failures_from_one_address_are_slowed_down(live):
    from auth.accounts import LOGIN_THROTTLE, LoginThrottle, ThrottlePolicy
    from tests.identity.helpers import login_via_forms

    live.ctx.provide(LOGIN_THROTTLE, LoginThrottle(ThrottlePolicy(per_source=3)))
    for attempt in range(3):
        answer = await login_via_forms(live.client, f"nobody{attempt}", "wrong-password", code="123456")
        assert answer.status == 401
    blocked = await login_via_forms(live.client, "nobody", "wrong-password", code="123456")
    assert blocked.status == 429
    assert "För många misslyckade inloggningar" in await blocked.text()
    later = live.ctx.clock
    live.ctx.clock = lambda: later() + timedelta(minutes=6)
    try:
        again = await login_via_forms(live.client, "nobody", "wrong-password", code="123456")
    finally:
        live.ctx.clock = later
    assert again.status == 401


async def test_prompt_login_and_max_age_force_a_fresh_login(live):
    from tests.identity.helpers import login_via_forms

    _, totp = await local_user(live.ctx, "max")
    assert (await login_via_forms(live.client, "max", secret=totp)).status == 302  # provider session exists
    redirect = live.base + "/auth/callback"
    _verifier, challenge = pkce()
    params = {"response_type": "code", "client_id": "brygga", "redirect_uri": redirect, "scope": "openid",
              "state": "s", "nonce": "n", "code_challenge": challenge, "code_challenge_method": "S256"}  # fmt: skip
    sso = await live.client.get("/idp/authorize?" + urlencode(params), allow_redirects=False)
    assert sso.status == 302  # single sign-on
    for extra in ({"prompt": "login"}, {"max_age": "0"}):
        if "max_age" in extra:
            await asyncio.sleep(1.1)
        page = await live.client.get("/idp/authorize?" + urlencode({**params, **extra}), allow_redirects=False)
        assert page.status == 200 and "Logga in" in await page.text()
