"""The codes the web client builds forms from agree with what the API validates."""

from __future__ import annotations

from typing import get_args

from server.directory import schemas, text


def test_literal_types_match_the_code_lists():
    assert get_args(schemas.OrgKind) == text.ORG_KINDS
    assert get_args(schemas.UnitType) == text.UNIT_TYPES
    assert get_args(schemas.Purpose) == text.PURPOSES
    assert get_args(schemas.Channel) == text.CHANNELS
    assert get_args(schemas.Audience) == text.AUDIENCES
    assert get_args(schemas.HolidayRule) == text.HOLIDAY_RULES
    assert len(text.MUNICIPALITIES) == 26 and text.MUNICIPALITIES["0182"] == "Nacka"


def test_org_numbers_and_hsa_ids():
    assert text.luhn_valid("2321000016") and text.luhn_valid("2321000131")
    assert not text.luhn_valid("2321000017")
    assert text.hsa_id_problem("SE2321000016-7AV52") is None
    assert text.hsa_id_problem("SE2321000016-ÅÄÖ") is not None
    assert text.hsa_id_problem("SE2321000016-" + "A" * 19) is not None  # 32 characters
    assert text.fold("Södersjukhuset, Avd. 52 – Älvsjö") == "sodersjukhuset avd 52 alvsjo"


async def test_vocabulary_endpoint(client, staff):
    response = await client.get("/api/v1/directory/vocabulary", headers=staff)
    assert response.status == 200
    body = await response.json()
    assert {"code": "0182", "name": "Nacka"} in body["municipalities"]
    assert "weekend_discharge" in body["purposes"]
