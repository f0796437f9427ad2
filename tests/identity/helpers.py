"""Shared helpers for identity tests: a live app on a real port, local accounts, a form-posting login."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from html import unescape
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import pyotp
from aiohttp.test_utils import TestClient, TestServer

from auth import accounts
from server.app import create_app
from server.core.app_keys import envelope_for
from server.core.context import CTX, AppContext
from server.identity import service
from server.migrate import upgrade
from server.settings import Settings
from tests.conftest import free_port

WEB_DIST = Path(__file__).resolve().parents[2] / "client_web" / "dist"
PASSWORD = "korrekt-hast-batteri"


@dataclass
class Live:
    settings: Settings
    client: TestClient  # type: ignore[type-arg]

    @property
    def ctx(self) -> AppContext:
        return self.client.app[CTX]

    @property
    def base(self) -> str:
        return self.settings.public_base_url

    def browser(self, source: str | None = None) -> Browser:
        return Browser(self.base, source)


class Browser:
    """A cookie-keeping HTTP client, like one browser profile; `source` picks its loopback address."""

    def __init__(self, base: str, source: str | None = None) -> None:
        self.base = base
        connector = aiohttp.TCPConnector(local_addr=(source, 0)) if source else None
        self.session = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True), connector=connector)

    def get(self, path: str, **kwargs: Any) -> Any:
        return self.session.get(self.base + path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> Any:
        return self.session.post(self.base + path, **kwargs)

    async def close(self) -> None:
        await self.session.close()


async def start_live(data_dir: Path, **overrides: Any) -> Live:
    port = free_port()
    settings = Settings(data_dir=data_dir, public_base_url=f"http://127.0.0.1:{port}", web_dist=WEB_DIST, **overrides)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    await upgrade(settings.effective_database_url)
    client = TestClient(TestServer(create_app(settings), host="127.0.0.1", port=port))
    await client.start_server()
    return Live(settings, client)


async def local_user(
    ctx: AppContext,
    login: str,
    *,
    units: dict[uuid.UUID, str] | None = None,
    roles: list[str] | None = None,
    enrolled: bool = True,
) -> tuple[uuid.UUID, str]:
    """A local account with PASSWORD; returns (user id, TOTP secret or '')."""
    secret = pyotp.random_base32() if enrolled else ""
    async with ctx.db.transaction() as session:
        user = await service.create_local_user(session, login, login.capitalize(), roles=roles)
        for unit_id, role in (units or {}).items():
            await service.set_membership(session, user, unit_id, role)
        await accounts.set_password(session, user, PASSWORD, datetime.now(UTC))
        if secret:
            await accounts.set_totp(session, await envelope_for(ctx), user, secret, datetime.now(UTC))
        return user.id, secret


def form_fields(html: str) -> dict[str, str]:
    fields = {}
    for name, value in re.findall(r"<input type='hidden' name='(\w+)' value='([^']*)'>", html):
        fields[name] = unescape(value)
    return fields


def path_of(url: str) -> str:
    parts = urlsplit(url)
    return parts.path + ("?" + parts.query if parts.query else "")


async def login_via_forms(
    client: Any,
    login: str,
    password: str = PASSWORD,
    code: str | None = None,
    secret: str | None = None,
    start_path: str = "/auth/login",
) -> Any:
    """Drive /auth/login → /idp login form → /auth/callback like a browser; returns the last response."""
    start = await client.get(start_path, allow_redirects=False)
    assert start.status == 302, await start.text()
    page = await client.get(path_of(start.headers["Location"]), allow_redirects=False)
    assert page.status == 200, await page.text()
    fields = form_fields(await page.text())
    if code is None and secret:
        code = pyotp.TOTP(secret).now()
    answer = await client.post(
        "/idp/login",
        data={**fields, "login": login, "password": password, "code": code or ""},
        allow_redirects=False,
    )
    if answer.status != 302:
        return answer
    callback = await client.get(path_of(answer.headers["Location"]), allow_redirects=False)
    return callback


async def login_with_provider_session(client: Any) -> Any:
    """Log in again while the provider session is alive (single sign-on: no form)."""
    start = await client.get("/auth/login", allow_redirects=False)
    authorize = await client.get(path_of(start.headers["Location"]), allow_redirects=False)
    assert authorize.status == 302, await authorize.text()
    return await client.get(path_of(authorize.headers["Location"]), allow_redirects=False)


async def csrf(client: Any) -> dict[str, str]:
    info = await (await client.get("/api/v1/session")).json()
    return {"X-CSRF-Token": info["csrf_token"]}
