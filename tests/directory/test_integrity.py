"""Data integrity of import/export and of what FHIR consumers learn (issue 14, bugs 1-6)."""

from __future__ import annotations

import csv
import io
import json

from sqlalchemy import func, select

from server.core.models import Organisation
from server.directory.models import DirectoryVersion
from tests.directory.conftest import AV52, VC_NACKA, unit_id
from tests.directory.test_import import row, to_csv


def csv_of(rows: list[dict[str, str]]) -> str:
    """A CSV with exactly the columns the rows have (to_csv always writes every column)."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


COUNTS = ("organisations_created", "organisations_updated", "units_created", "units_updated", "routes_written")


async def post_import(client, admin, body: str, fmt: str, *, dry_run: bool = False) -> dict:
    content_type = "application/json" if fmt == "json" else "text/csv"
    response = await client.post(
        "/api/v1/directory/import",
        params={"format": fmt, "dry_run": "true" if dry_run else "false"},
        data=body.encode(),
        headers={**admin, "Content-Type": content_type},
    )
    assert response.status == 200, await response.text()
    return await response.json()


async def export(client, admin, fmt: str) -> str:
    response = await client.get("/api/v1/directory/export", params={"format": fmt}, headers=admin)
    assert response.status == 200
    return await response.text()


async def version_count(ctx) -> int:
    async with ctx.db.transaction() as session:
        return int(await session.scalar(select(func.count()).select_from(DirectoryVersion)) or 0)


async def test_import_never_clears_what_it_does_not_carry(client, admin, ctx):
    """Bug 1: a CSV of units of an existing organisation kept the organisation but erased its HSA-id."""
    document = {
        "organisations": [
            {
                "name": "Region Stockholm",
                "kind": "region",
                "org_number": "2321000016",
                "hsa_id": "SE2321000016-0001",
                "municipality_code": "0180",
            }
        ],
        "units": [
            {
                "hsa_id": "SE2321000016-IMP1",
                "organisation_number": "2321000016",
                "name": "Importerad avdelning 1",
                "unit_type": "ward",
                "description": "Avdelningen för test",
                "valid_from": "2026-01-01",
                "routes": [],
            }
        ],
    }
    assert (await post_import(client, admin, json.dumps(document), "json"))["committed"]
    columns = [c for c in row(1) if c not in ("organisation_kind",)]  # a file without the kind column
    csv_rows = [{key: value for key, value in row(1).items() if key in columns}]
    report = await post_import(client, admin, csv_of(csv_rows), "csv")
    assert report["committed"], report
    async with ctx.db.transaction() as session:
        org = (await session.execute(select(Organisation))).scalar_one()
        assert (org.hsa_id, org.municipality_code, org.kind) == ("SE2321000016-0001", "0180", "region")
    unit = await client.get(f"/api/v1/units/{await unit_id(ctx, 'SE2321000016-IMP1')}", headers=admin)
    body = await unit.json()
    assert body["description"] == "Avdelningen för test"
    assert body["valid_from"] == "2026-01-01"


async def test_export_then_import_is_a_no_op_and_dry_run_counts_equal_commit_counts(client, admin, demo):
    """Bug 1: the project's own export -> import round trip must change nothing, and say so in the dry run."""
    for fmt in ("json", "csv"):
        before = await version_count(demo)
        body = await export(client, admin, fmt)
        dry = await post_import(client, admin, body, fmt, dry_run=True)
        real = await post_import(client, admin, body, fmt)
        assert real["committed"] and not real["errors"], real
        assert {key: dry[key] for key in COUNTS} == {key: real[key] for key in COUNTS}, fmt
        assert {key: real[key] for key in COUNTS} == dict.fromkeys(COUNTS, 0), (fmt, real)
        assert await version_count(demo) == before, fmt
        assert await export(client, admin, fmt) == body


JULAFTON_EVENING = "2026-12-24T19:00:00+01:00"


async def reachable(client, admin, unit: str, at: str) -> dict:
    response = await client.get(f"/api/v1/units/{unit}/reachability", params={"at": at}, headers=admin)
    assert response.status == 200, await response.text()
    return await response.json()


async def test_a_route_is_never_always_open_by_omission(client, admin, ctx):
    """Bug 2: a file without hours made every route open round the clock; only the word `always` does that."""
    no_column = [{key: value for key, value in row(1).items() if key != "route_hours"}]
    report = await post_import(client, admin, csv_of(no_column), "csv")
    assert not report["committed"]
    assert report["errors"][0]["line"] == 1 and "route_hours" in report["errors"][0]["reason"]
    empty = await post_import(client, admin, to_csv([row(1, route_hours="")]), "csv")
    assert not empty["committed"] and "hours" in empty["errors"][0]["reason"], empty
    document = {"units": [{**_json_unit(1), "routes": [{k: v for k, v in ROUTE.items() if k != "hours"}]}]}
    missing = await post_import(client, admin, json.dumps(document), "json")
    assert not missing["committed"] and "hours" in missing["errors"][0]["reason"], missing
    committed = await post_import(client, admin, to_csv([row(1, route_hours="always")]), "csv")
    assert committed["committed"], committed
    unit = await unit_id(ctx, "SE2321000016-IMP1")
    assert (await reachable(client, admin, unit, "2026-12-06T03:00:00+01:00"))["reachable"]


ROUTE = {
    "purpose": "discharge_planning",
    "channel": "phone",
    "label": "Vårdplanering",
    "value": "+46 8 123 000 00",
    "hours": ["1#7#08:00#22:00"],
}


def _json_unit(index: int) -> dict:
    return {
        "hsa_id": f"SE2321000016-IMP{index}",
        "organisation_number": "2321000016",
        "name": f"Importerad avdelning {index}",
        "unit_type": "ward",
    }


async def test_reimport_updates_routes_in_place_and_keeps_their_closures(client, admin, ctx):
    """Bug 3: re-importing a unit deleted and re-created its routes; a route closed on Julafton evening
    then reported reachable."""
    first = await post_import(client, admin, to_csv([row(1, route_hours="1#7#08:00#22:00")]), "csv")
    assert first["committed"], first
    unit = await unit_id(ctx, "SE2321000016-IMP1")
    route_id = (await (await client.get(f"/api/v1/units/{unit}", headers=admin)).json())["routes"][0]["id"]
    closure = await client.post(
        f"/api/v1/units/{unit}/closures",
        json={
            "route_id": route_id,
            "starts_at": "2026-12-24T15:00:00+01:00",
            "ends_at": "2026-12-25T08:00:00+01:00",
            "reason": "Julafton",
        },
        headers=admin,
    )
    assert closure.status == 201, await closure.text()
    assert not (await reachable(client, admin, unit, JULAFTON_EVENING))["reachable"]
    again = await post_import(client, admin, to_csv([row(1, route_hours="1#7#07:00#23:00")]), "csv")
    assert again["committed"] and again["routes_written"] == 1, again
    after = await (await client.get(f"/api/v1/units/{unit}", headers=admin)).json()
    assert [route["id"] for route in after["routes"]] == [route_id]
    assert after["routes"][0]["hours"][0]["from_time"] == "07:00:00"
    assert not (await reachable(client, admin, unit, JULAFTON_EVENING))["reachable"]
    history = await (await client.get(f"/api/v1/routes/{route_id}/history", headers=admin)).json()
    assert [v["operation"] for v in history["versions"]][-1] == "update"


async def test_import_validation_names_the_timespan_and_field(client, admin, ctx):
    """Bug 6: which TimeSpan and field is wrong; no trailing garbage; semicolon CSV; unknown columns; HSA's
    `1#7#00:00#23:59` means always (no nightly one-minute gap)."""
    for bad, field in (("1#5#08:00xyz#16:00", "fromTime"), ("1#5#08:00#16:00:99", "toTime")):
        report = await post_import(client, admin, to_csv([row(1, route_hours=f"6#7#09:00#13:00;{bad}")]), "csv")
        assert not report["committed"], bad
        reason = report["errors"][0]["reason"]
        assert "TimeSpan 2 of 2" in reason and field in reason and bad in reason, reason
    header, data = to_csv([row(1)]).splitlines()
    extra = f"{header},colour\n{data},blue\n"
    unknown = await post_import(client, admin, extra, "csv")
    assert not unknown["committed"] and "colour" in unknown["errors"][0]["reason"], unknown
    unknown_json = await post_import(client, admin, json.dumps({"units": [], "enheter": []}), "json")
    assert not unknown_json["committed"] and "enheter" in unknown_json["errors"][0]["reason"]
    field_json = await post_import(client, admin, json.dumps({"units": [{**_json_unit(1), "colour": "x"}]}), "json")
    assert not field_json["committed"] and "colour" in field_json["errors"][0]["reason"]
    semicolons = to_csv([row(1, route_hours="1#7#00:00#23:59")]).replace(",", ";")
    report = await post_import(client, admin, semicolons, "csv")
    assert report["committed"], report
    unit = await unit_id(ctx, "SE2321000016-IMP1")
    for moment in ("2026-12-02T23:59:30+01:00", "2026-12-03T00:00:00+01:00", "2026-12-06T12:00:00+01:00"):
        assert (await reachable(client, admin, unit, moment))["reachable"], moment


async def _public_route(client, admin, unit) -> dict:
    body = {
        "channel": "phone",
        "label": "Rådgivning",
        "value": "+46 8 555 000 00",
        "audience": "public",
        "hours": [{"from_day": 1, "to_day": 7, "all_day": True}],
    }
    response = await client.post(f"/api/v1/units/{unit}/routes", json=body, headers=admin)
    assert response.status == 201, await response.text()
    return await response.json()


async def test_a_unit_closure_is_a_new_version_of_each_healthcare_service(client, admin, demo):
    """Bug 4: a unit closure changed the HealthcareService without a new versionId, ETag or _history entry."""
    unit = await unit_id(demo, AV52)
    route = await _public_route(client, admin, unit)
    path = f"/fhir/HealthcareService/{route['id']}"
    before = await client.get(path)
    version = (await before.json())["meta"]["versionId"]
    closure = await client.post(
        f"/api/v1/units/{unit}/closures",
        json={"starts_at": "2026-12-24T12:00:00+01:00", "ends_at": "2026-12-27T08:00:00+01:00", "reason": "Jul"},
        headers=admin,
    )
    assert closure.status == 201
    after = await client.get(path)
    shown = await after.json()
    assert shown["notAvailable"][0]["description"] == "Jul"
    assert int(shown["meta"]["versionId"]) == int(version) + 1
    assert after.headers["ETag"] != before.headers["ETag"]
    history = await (await client.get(f"{path}/_history")).json()
    assert history["entry"][0]["resource"]["meta"]["versionId"] == shown["meta"]["versionId"]
    assert history["entry"][0]["resource"]["notAvailable"] == shown["notAvailable"]
    removed = await client.delete(f"/api/v1/closures/{(await closure.json())['id']}", headers=admin)
    assert removed.status == 204
    last = await (await client.get(path)).json()
    assert int(last["meta"]["versionId"]) == int(version) + 2 and "notAvailable" not in last


async def test_anonymous_iti91_sees_a_route_leave_public_view_as_a_deletion(client, admin, demo):
    """Bug 5: a public route made staff-only (or deleted) never showed up in the anonymous _history feed."""
    unit = await unit_id(demo, AV52)
    hidden = await _public_route(client, admin, unit)
    deleted = await _public_route(client, admin, unit)
    since = (await (await client.get(f"/fhir/HealthcareService/{hidden['id']}")).json())["meta"]["lastUpdated"]
    patch = await client.patch(
        f"/api/v1/routes/{hidden['id']}",
        json={"audience": "staff"},
        headers={**admin, "If-Match": f'W/"{hidden["version"]}"'},
    )
    assert patch.status == 200, await patch.text()
    gone = await client.delete(
        f"/api/v1/routes/{deleted['id']}", headers={**admin, "If-Match": f'W/"{deleted["version"]}"'}
    )
    assert gone.status == 204
    feed = await (await client.get("/fhir/HealthcareService/_history", params={"_since": since})).json()
    latest = {}
    for entry in reversed(feed["entry"]):  # newest first in the Bundle
        latest[entry["request"]["url"].rsplit("/", 1)[1]] = entry
    for route in (hidden, deleted):
        assert latest[route["id"]]["request"]["method"] == "DELETE", latest[route["id"]]
        assert "resource" not in latest[route["id"]]
        old = await client.get(f"/fhir/HealthcareService/{route['id']}/_history/1")
        assert old.status in (404, 410), await old.text()
    staff_view = await client.get(f"/fhir/HealthcareService/{hidden['id']}/_history/1", headers=admin)
    assert staff_view.status == 200


async def test_a_route_made_through_the_api_is_never_always_open_by_omission(client, admin, demo):
    """Bug 2, REST side: a route created (or a unit created with routes) without hours got "Alltid" and flipped
    the unit to reachable on a weekday evening. Hours are required; only the explicit "always" means always."""
    unit = await unit_id(demo, VC_NACKA)
    wednesday_evening = "2026-12-02T20:30:00+01:00"
    assert not (await reachable(client, admin, unit, wednesday_evening))["reachable"]
    route = {"channel": "phone", "label": "Kväll", "value": "+46 8 555 111 00"}
    for hours in ({}, {"hours": []}, {"hours": None}):
        refused = await client.post(f"/api/v1/units/{unit}/routes", json={**route, **hours}, headers=admin)
        assert refused.status == 422, hours
        assert "hours" in (await refused.text()), hours
    org = (await (await client.get(f"/api/v1/units/{unit}", headers=admin)).json())["organisation"]["id"]
    new_unit = {"organisation_id": org, "name": "Ny enhet", "unit_type": "ward", "routes": [route]}
    assert (await client.post("/api/v1/units", json=new_unit, headers=admin)).status == 422
    assert not (await reachable(client, admin, unit, wednesday_evening))["reachable"]

    weekdays = [{"from_day": 1, "to_day": 5, "from_time": "08:00", "to_time": "16:00"}]
    created = await client.post(f"/api/v1/units/{unit}/routes", json={**route, "hours": weekdays}, headers=admin)
    assert created.status == 201, await created.text()
    assert not (await reachable(client, admin, unit, wednesday_evening))["reachable"]
    emptied = await client.patch(
        f"/api/v1/routes/{(await created.json())['id']}",
        json={"hours": []},
        headers={**admin, "If-Match": created.headers["ETag"]},
    )
    assert emptied.status == 422
    always = await client.patch(
        f"/api/v1/routes/{(await created.json())['id']}",
        json={"hours": "always"},
        headers={**admin, "If-Match": created.headers["ETag"]},
    )
    assert always.status == 200, await always.text()
    assert (await always.json())["hours"] == []
    assert (await reachable(client, admin, unit, wednesday_evening))["reachable"]
