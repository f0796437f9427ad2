"""Discharge fixtures: a ward, primary care, home care and an unrelated unit, one member each, a movable clock."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.conftest import bearer


@dataclass
class Clock:
    now: datetime

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@dataclass
class Site:
    client: Any
    ctx: Any
    clock: Clock
    ward: uuid.UUID
    primary: uuid.UUID
    home: uuid.UUID
    other: uuid.UUID
    tokens: dict[str, str]

    def h(self, who: str) -> dict[str, str]:
        return bearer(self.tokens[who])

    async def call(self, who: str, method: str, path: str, body: Any = None, expect: int = 200) -> Any:
        response = await self.client.request(method, path, json=body, headers=self.h(who))
        text = await response.text()
        assert response.status == expect, text
        return await response.json() if response.content_type.endswith("json") else text

    def opening(self, ref: str = "SÖS-2026-0001", **extra: Any) -> dict[str, Any]:
        return {
            "case_ref": ref,
            "municipality_code": "0180",
            "district": "Södermalm",
            "age_band": "65_plus",
            "ward_unit_id": str(self.ward),
            "units": [
                {"unit_id": str(self.primary), "role": "primary_care"},
                {"unit_id": str(self.home), "role": "home_care"},
            ],
            "admitted_at": self.clock.now.isoformat(),
            **extra,
        }


@pytest.fixture
async def site(client, ctx, actors) -> Site:
    clock = Clock(datetime(2026, 3, 2, 8, 0, tzinfo=UTC))  # a Monday
    ctx.clock = clock
    ward = await actors.unit("Avdelning 52")
    primary = await actors.unit("Vårdcentral Söder", unit_type="primary_care")
    home = await actors.unit("Hemtjänst Södermalm", unit_type="home_care", org_kind="municipality")
    other = await actors.unit("Hemtjänst Kista", unit_type="home_care", org_kind="municipality")
    tokens = {}
    for login, unit in {"sara": ward, "leo": primary, "hanna": home, "olle": other}.items():
        _, tokens[login] = await actors.user(login, units={unit: "member"})
    _, tokens["analyst"] = await actors.user("analyst", roles=["followup"])
    return Site(client, ctx, clock, ward, primary, home, other, tokens)
