"""Fixtures for the web-client tests: a live Brygga on a real port, a small directory and two staff.

Everything goes through the real server parts: units through the directory's admin REST API,
accounts through identity's local accounts (password + TOTP), logins through the browser.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pyotp
import pytest
from sqlalchemy import update

from server.core.models import User
from tests.conftest import CHROMIUM, CHROMIUM_ARGS, bearer, require_service
from tests.identity.helpers import PASSWORD, Live, local_user, start_live


@dataclass
class Staff:
    login: str
    name: str
    user_id: uuid.UUID
    totp_secret: str


@dataclass
class Demo:
    live: Live
    ward: uuid.UUID  # Avdelning 64, Södersjukhuset (region)
    municipal: uuid.UUID  # Biståndsenheten Nacka (municipality)
    nurse: Staff
    officer: Staff
    admin: Staff
    admin_token: str

    @property
    def base(self) -> str:
        return self.live.base

    def url(self, path: str = "/") -> str:
        return self.live.base + path


async def api(live: Live, method: str, path: str, token: str, body: Any = None) -> Any:
    async with (
        aiohttp.ClientSession() as http,
        http.request(method, live.base + path, json=body, headers=bearer(token)) as response,
    ):
        payload = await response.json(content_type=None)
        assert response.status < 300, f"{method} {path}: {response.status} {payload}"
        return payload


async def staff(live: Live, login: str, name: str, **kwargs: Any) -> Staff:
    user_id, secret = await local_user(live.ctx, login, **kwargs)
    async with live.ctx.db.transaction() as session:
        await session.execute(update(User).where(User.id == user_id).values(display_name=name))
    return Staff(login, name, user_id, secret)


WEEKDAYS_DAYTIME = [{"from_day": 1, "to_day": 5, "from_time": "08:00", "to_time": "16:30"}]
WEEKEND = [{"from_day": 6, "to_day": 7, "from_time": "09:00", "to_time": "15:00"}]


@pytest.fixture
async def demo(tmp_path: Path) -> AsyncIterator[Demo]:
    live = await start_live(tmp_path / "data")
    try:
        _, admin_token = await _admin_token(live)
        region = await api(
            live, "POST", "/api/v1/organisations", admin_token, {"name": "Region Stockholm", "kind": "region"}
        )
        nacka = await api(
            live, "POST", "/api/v1/organisations", admin_token,
            {"name": "Nacka kommun", "kind": "municipality", "municipality_code": "0182"},
        )  # fmt: skip
        ward = await api(
            live, "POST", "/api/v1/units", admin_token,
            {
                "organisation_id": region["id"], "name": "Avdelning 64, Södersjukhuset", "unit_type": "ward",
                "municipality_code": "0180",
                "routes": [{"channel": "phone", "label": "Expedition", "value": "08-616 64 00", "purpose": "general",
                            "hours": "always"}],
            },
        )  # fmt: skip
        municipal = await api(
            live, "POST", "/api/v1/units", admin_token,
            {
                "organisation_id": nacka["id"], "name": "Biståndsenheten Nacka", "unit_type": "social_services",
                "municipality_code": "0182",
                "address": {"street": "Granitvägen 15", "postal_code": "13181", "town": "Nacka"},
                "routes": [
                    {"channel": "phone", "label": "Biståndshandläggare", "value": "08-718 80 00",
                     "purpose": "discharge_planning", "rank": 10, "hours": WEEKDAYS_DAYTIME},
                    {"channel": "phone", "label": "Helgjour utskrivning", "value": "08-718 80 99",
                     "purpose": "weekend_discharge", "rank": 20, "hours": WEEKEND},
                ],
            },
        )  # fmt: skip
        ward_id, municipal_id = uuid.UUID(ward["id"]), uuid.UUID(municipal["id"])
        nurse = await staff(live, "nora", "Nora Lind", units={ward_id: "member"})
        officer = await staff(live, "olle", "Olle Berg", units={municipal_id: "member"})
        admin = await staff(live, "dagny", "Dagny Admin", units={ward_id: "member"}, roles=["directory_admin"])
        yield Demo(live, ward_id, municipal_id, nurse, officer, admin, admin_token)
    finally:
        await live.client.close()


@pytest.fixture
async def media_browser() -> AsyncIterator[Any]:
    """Debian Chromium with Chromium's built-in fake camera and microphone (for the meeting page)."""
    require_service(Path(CHROMIUM).exists(), f"Debian chromium at {CHROMIUM}")
    from playwright.async_api import async_playwright

    fake_media = ["--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream"]
    async with async_playwright() as playwright:
        instance = await playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS + fake_media
        )
        try:
            yield instance
        finally:
            await instance.close()


async def _admin_token(live: Live) -> tuple[uuid.UUID, str]:
    from server.identity import service

    async with live.ctx.db.transaction() as session:
        user = await service.create_local_user(session, "katalogbot", "Katalogbot", roles=["directory_admin"])
        token = await service.create_token_for(session, user, "web tests", None)
        return user.id, token


async def login(page: Any, demo: Demo, who: Staff, path: str = "/#/inbox") -> None:
    """Log in like a person: Brygga's login link → the built-in provider's form (password + TOTP) → back."""
    await page.goto(demo.url(path))
    await page.get_by_test_id("login-link").click()
    await finish_login(page, who)


async def finish_login(page: Any, who: Staff) -> None:
    """Fill the provider's form if it asks (a live provider session signs in without a form)."""
    user = page.locator(".user-name", has_text=who.name)
    form = page.locator("#password")
    await user.or_(form).first.wait_for(timeout=15_000)
    if await form.count():
        await page.locator("#login").fill(who.login)
        await form.fill(PASSWORD)
        await page.locator("#code").fill(pyotp.TOTP(who.totp_secret).now())
        await page.locator("form button[type=submit]").click()
    await user.wait_for(timeout=15_000)
