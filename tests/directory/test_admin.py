"""Admin editing: ETag/If-Match (412 on conflict, 428 without), history with diffs, audit, authorisation."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from sqlalchemy import select

from server.core.models import AuditEvent
from tests.conftest import bearer
from tests.directory.conftest import HT_NACKA, VC_NACKA, unit_id


async def create_org(client, admin) -> dict:
    response = await client.post(
        "/api/v1/organisations",
        json={"name": "Vårdbolaget Exempel AB", "kind": "private", "org_number": "5560000002"},
        headers=admin,
    )
    return response


async def test_org_number_luhn_and_hsa_id_are_validated(client, admin):
    bad = await create_org(client, admin)
    assert bad.status == 422
    assert "Luhn" in (await bad.json())["detail"]
    good = await client.post(
        "/api/v1/organisations",
        json={"name": "Vårdbolaget Exempel AB", "kind": "private", "org_number": "556000-0001"},
        headers=admin,
    )
    assert good.status == 201, await good.text()
    org = await good.json()
    assert org["org_number"] == "5560000001"
    assert good.headers["ETag"] == 'W/"1"'
    for hsa_id in ("SE556000000-X", "SE5560000001-ÅÄÖ", "SE5560000001-" + "A" * 20, "se5560000007-A"):
        response = await client.post(
            "/api/v1/units",
            json={"organisation_id": org["id"], "name": "Enhet", "unit_type": "ward", "hsa_id": hsa_id},
            headers=admin,
        )
        assert response.status == 422, hsa_id
    ok = await client.post(
        "/api/v1/units",
        json={
            "organisation_id": org["id"],
            "name": "Enhet",
            "unit_type": "ward",
            "hsa_id": "SE5560000001-A1",
            "address": {"street": "Gatan 1", "postal_code": "118 83", "town": "Stockholm"},
            "routes": [
                {
                    "channel": "phone",
                    "label": "Exp",
                    "value": "+46 8 123 456 78",
                    "hours": [{"from_day": 1, "to_day": 5, "from_time": "08:00", "to_time": "16:00"}],
                }
            ],
        },
        headers=admin,
    )
    assert ok.status == 201, await ok.text()
    unit = await ok.json()
    assert unit["address"]["postal_code"] == "11883"
    assert unit["routes"][0]["hours"][0]["text"] == "mon-fri 08:00-16:00"


async def test_two_concurrent_edits_second_gets_412_and_nothing_is_lost(client, demo, admin, ctx):
    unit = await unit_id(demo, VC_NACKA)
    loaded = await client.get(f"/api/v1/units/{unit}", headers=admin)
    etag = loaded.headers["ETag"]
    first, second = await asyncio.gather(
        client.patch(f"/api/v1/units/{unit}", json={"description": "Ingång C"}, headers={**admin, "If-Match": etag}),
        client.patch(
            f"/api/v1/units/{unit}", json={"aliases": ["VC Nacka", "Nacka VC"]}, headers={**admin, "If-Match": etag}
        ),
    )
    statuses = sorted([first.status, second.status])
    assert statuses == [200, 412], [await first.text(), await second.text()]
    loser = first if first.status == 412 else second
    winner = second if loser is first else first
    problem = await loser.json()
    assert problem["code"] == "precondition_failed"
    assert loser.headers["ETag"] == winner.headers["ETag"]
    # The loser reloads, re-applies and saves: both changes survive.
    current = await client.get(f"/api/v1/units/{unit}", headers=admin)
    retry_body = {"aliases": ["VC Nacka", "Nacka VC"]} if loser is second else {"description": "Ingång C"}
    retry = await client.patch(
        f"/api/v1/units/{unit}", json=retry_body, headers={**admin, "If-Match": current.headers["ETag"]}
    )
    assert retry.status == 200
    final = await retry.json()
    assert final["description"] == "Ingång C"
    assert final["aliases"] == ["VC Nacka", "Nacka VC"]
    assert final["version"] == 3
    history = await (await client.get(f"/api/v1/units/{unit}/history", headers=admin)).json()
    assert [v["version"] for v in history["versions"]] == [1, 2, 3]
    assert history["versions"][1]["operation"] == "update"
    assert set(history["versions"][1]["diff"]) <= {"description", "aliases"}
    async with ctx.db.transaction() as session:
        audits = (
            (
                await session.execute(
                    select(AuditEvent).where(
                        AuditEvent.action == "directory.unit.update", AuditEvent.object_id == str(unit)
                    )
                )
            )
            .scalars()
            .all()
        )
    assert len(audits) == 2
    assert all(event.details["diff"] and event.actor_user_id for event in audits)


async def test_if_match_is_required_and_checked(client, demo, admin):
    unit = await unit_id(demo, VC_NACKA)
    missing = await client.patch(f"/api/v1/units/{unit}", json={"description": "x"}, headers=admin)
    assert missing.status == 428
    stale = await client.patch(f"/api/v1/units/{unit}", json={"description": "x"}, headers={**admin, "If-Match": '"7"'})
    assert stale.status == 412
    deleted = await client.delete(f"/api/v1/units/{unit}", headers=admin)
    assert deleted.status == 428


async def test_routes_edit_and_delete_with_history(client, demo, admin):
    unit = await unit_id(demo, HT_NACKA)
    created = await client.post(
        f"/api/v1/units/{unit}/routes",
        json={
            "purpose": "on_call",
            "channel": "phone",
            "label": "Nattpatrull",
            "value": "08-123 456 00",
            "hours": [{"from_day": 1, "to_day": 7, "from_time": "22:00", "to_time": "07:00"}],
        },
        headers=admin,
    )
    assert created.status == 201, await created.text()
    route = await created.json()
    bad_phone = await client.patch(
        f"/api/v1/routes/{route['id']}",
        json={"value": "ring oss"},
        headers={**admin, "If-Match": created.headers["ETag"]},
    )
    assert bad_phone.status == 422
    changed = await client.patch(
        f"/api/v1/routes/{route['id']}", json={"rank": 5, "hours": "always"}, headers={**admin, "If-Match": 'W/"1"'}
    )
    assert changed.status == 200, await changed.text()
    assert (await changed.json())["hours"] == []
    removed = await client.delete(
        f"/api/v1/routes/{route['id']}", headers={**admin, "If-Match": changed.headers["ETag"]}
    )
    assert removed.status == 204
    assert (await client.get(f"/api/v1/routes/{route['id']}", headers=admin)).status == 404
    history = await (await client.get(f"/api/v1/routes/{route['id']}/history", headers=admin)).json()
    assert [v["operation"] for v in history["versions"]] == ["create", "update", "delete"]
    assert history["versions"][1]["diff"]["rank"] == [100, 5]


async def test_only_admins_and_own_unit_admins_may_edit(client, demo, actors):
    home_care = await unit_id(demo, HT_NACKA)
    primary_care = await unit_id(demo, VC_NACKA)
    _user, token = await actors.user("enhetschef", units={home_care: "unit_admin"})
    headers = bearer(token)
    own = await client.get(f"/api/v1/units/{home_care}", headers=headers)
    ok = await client.patch(
        f"/api/v1/units/{home_care}",
        json={"description": "Ny entré"},
        headers={**headers, "If-Match": own.headers["ETag"]},
    )
    assert ok.status == 200
    other = await client.patch(
        f"/api/v1/units/{primary_care}", json={"description": "x"}, headers={**headers, "If-Match": 'W/"1"'}
    )
    assert other.status == 403
    valid = {"name": "Vårdbolaget Exempel AB", "kind": "private", "org_number": "5560000001"}
    assert (await client.post("/api/v1/organisations", json=valid, headers=headers)).status == 403
    anonymous = await client.get("/api/v1/units", params={"q": "nacka"})
    assert anonymous.status == 401


async def test_endpoints_affiliations_and_change_feed(client, demo, admin):
    ward = await unit_id(demo, "SE2321000016-7AV52")
    home_care = await unit_id(demo, HT_NACKA)
    endpoint = await client.post(
        "/api/v1/endpoints",
        json={
            "unit_id": str(ward),
            "name": "Avd 52 inkorg",
            "connection_type": "brygga-secure-message",
            "address": "https://brygga.example/units/av52",
            "payload_types": ["brygga-message"],
        },
        headers=admin,
    )
    assert endpoint.status == 201, await endpoint.text()
    affiliation = await client.post(
        "/api/v1/affiliations",
        json={"primary_id": str(ward), "participating_id": str(home_care), "role": "discharge-cooperation"},
        headers=admin,
    )
    assert affiliation.status == 201, await affiliation.text()
    listed = await (await client.get("/api/v1/affiliations", params={"party": str(home_care)}, headers=admin)).json()
    assert len(listed["items"]) == 2  # the demo's own ward-to-home-care affiliation and this one
    feed = await (
        await client.get("/api/v1/directory/changes", params={"since": 0, "limit": 5000}, headers=admin)
    ).json()
    kinds = {item["resource_type"] for item in feed["items"]}
    assert {"organisation", "unit", "route", "endpoint", "affiliation"} <= kinds
    later = await (
        await client.get("/api/v1/directory/changes", params={"since": feed["next_since"]}, headers=admin)
    ).json()
    assert later["items"] == []


async def test_hours_preview_shows_two_weeks_with_holidays_and_closures_before_saving(client, demo, admin, ctx):
    """Issue 14, opening hours in the admin UI: the editor previews unsaved hours day by day."""
    unit = await unit_id(demo, HT_NACKA)
    ctx.clock = lambda: datetime(2026, 12, 22, 16, 0, tzinfo=UTC)  # Tuesday 17:00 in Stockholm
    closure = {"starts_at": "2026-12-28T00:00:00+01:00", "ends_at": "2026-12-29T00:00:00+01:00", "reason": "Flytt"}
    assert (await client.post(f"/api/v1/units/{unit}/closures", json=closure, headers=admin)).status == 201
    hours = [
        {"from_day": 1, "to_day": 5, "from_time": "08:00", "to_time": "16:00", "holiday_rule": "closed_on_holidays"},
        {"from_day": 1, "to_day": 7, "from_time": "10:00", "to_time": "14:00", "holiday_rule": "holidays_only"},
    ]
    response = await client.post(f"/api/v1/units/{unit}/hours-preview", json={"hours": hours}, headers=admin)
    assert response.status == 200, await response.text()
    shown = await response.json()
    assert shown["open_now"] is False
    assert datetime.fromisoformat(shown["next_opening"]) == datetime(2026, 12, 23, 7, 0, tzinfo=UTC)
    days = {day["date"]: day for day in shown["days"]}
    assert len(days) == 14 and min(days) == "2026-12-22"
    assert days["2026-12-23"]["open"] == [{"start": "08:00", "end": "16:00"}]
    assert days["2026-12-24"]["holiday"] == "Julafton"
    assert days["2026-12-24"]["open"] == [{"start": "10:00", "end": "14:00"}]
    assert days["2026-12-26"]["open"] == [{"start": "10:00", "end": "14:00"}]  # Annandag jul, a Saturday
    assert days["2026-12-27"]["open"] == []  # an ordinary Sunday
    assert days["2026-12-28"] == {"date": "2026-12-28", "holiday": None, "open": [], "closures": ["Flytt"]}
    always = await client.post(f"/api/v1/units/{unit}/hours-preview", json={"hours": "always"}, headers=admin)
    assert (await always.json())["open_now"] is True
    nothing = await client.post(f"/api/v1/units/{unit}/hours-preview", json={"hours": []}, headers=admin)
    assert nothing.status == 422
