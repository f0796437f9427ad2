"""FHIR conformance crawl (issue 14, ITI-90/91): every resource type anonymously and with a token, every page
(next links followed), every resource and Bundle validated as R4, and every search parameter the
CapabilityStatement declares exercised with a positive and a negative case."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.directory.conftest import AV52, unit_id
from tests.directory.test_fhir import validate

NOTHING = "00000000-0000-0000-0000-000000000000"


def _ref(field: str) -> Callable[[dict[str, Any]], str | None]:
    def get(resource: dict[str, Any]) -> str | None:
        value = resource.get(field)
        value = value[0] if isinstance(value, list) and value else value
        return value["reference"] if isinstance(value, dict) else None

    return get


def _code(field: str) -> Callable[[dict[str, Any]], str | None]:
    def get(resource: dict[str, Any]) -> str | None:
        value = resource.get(field)
        value = value[0] if isinstance(value, list) and value else value
        if not isinstance(value, dict):
            return None
        return value.get("code") or (value.get("coding") or [{}])[0].get("code")

    return get


def _name(resource: dict[str, Any]) -> str | None:
    name = resource.get("name")
    return name[0]["text"] if isinstance(name, list) else name  # HumanName (Practitioner) or a string


def _identifier(resource: dict[str, Any]) -> str | None:
    found = resource.get("identifier") or []
    return f"{found[0]['system']}|{found[0]['value']}" if found else None


# search parameter -> (positive value from a resource, a value that matches nothing); per type where they differ
POSITIVE: dict[str, Callable[[dict[str, Any]], str | None]] = {
    "_id": lambda r: r["id"],
    "_lastUpdated": lambda r: r["meta"]["lastUpdated"],
    "name": _name,
    "identifier": _identifier,
    "active": lambda r: str(r["active"]).lower() if "active" in r else None,
    "status": lambda r: r.get("status"),
    "type": _code("type"),
    "service-type": _code("type"),
    "role": _code("code"),
    "connection-type": _code("connectionType"),
    "partof": _ref("partOf"),
    "location": _ref("location"),
    "primary-organization": _ref("organization"),
    "participating-organization": _ref("participatingOrganization"),
    "practitioner": _ref("practitioner"),
}
ORGANIZATION_OF = {
    "Location": "managingOrganization",
    "HealthcareService": "providedBy",
    "Endpoint": "managingOrganization",
    "PractitionerRole": "organization",
}
NEGATIVE = {
    "_id": NOTHING,
    "_lastUpdated": "lt2000-01-01",
    "name": "zzqxj",
    "identifier": "urn:oid:9.9.9|nothing",
    "type": "no-such-code",
    "service-type": "no-such-code",
    "role": "no-such-code",
    "connection-type": "no-such-code",
    "partof": f"Organization/{NOTHING}",
    "organization": f"Organization/{NOTHING}",
    "location": f"Location/{NOTHING}",
    "primary-organization": f"Organization/{NOTHING}",
    "participating-organization": f"Organization/{NOTHING}",
    "practitioner": f"Practitioner/{NOTHING}",
}
OPPOSITE = {
    "true": "false",
    "false": "true",
    "active": "inactive",
    "inactive": "active",
    "suspended": "off",
    "off": "active",
}


async def get_bundle(
    client, path: str, headers: dict[str, str], *pairs: tuple[str, str], **params: str
) -> dict[str, Any]:
    params = [*pairs, *params.items()]
    response = await client.get(path, params=params, headers=headers)
    assert response.status == 200, (path, params, await response.text())
    bundle = await response.json()
    validate(bundle)
    return bundle


async def crawl(client, resource_type: str, headers: dict[str, str]) -> list[dict[str, Any]]:
    """Every match of the type, page by page through the next links."""
    found: list[dict[str, Any]] = []
    response = await client.get(f"/fhir/{resource_type}", params={"_count": "7"}, headers=headers)
    while True:
        assert response.status == 200, await response.text()
        bundle = await response.json()
        validate(bundle)
        found += [entry["resource"] for entry in bundle.get("entry", []) if entry["search"]["mode"] == "match"]
        following = [link["url"] for link in bundle["link"] if link["relation"] == "next"]
        if not following:
            break
        url = urlsplit(following[0])
        response = await client.get(f"{url.path}?{url.query}", headers=headers)
    assert len(found) == bundle["total"] == len({r["id"] for r in found}), resource_type
    return found


@pytest.mark.parametrize("who", ["anonymous", "token"])
async def test_crawl_validate_and_every_declared_parameter(client, demo, admin, nurse, who):
    headers = admin if who == "token" else {}
    ward = str(await unit_id(demo, AV52))  # a unit inside a unit, so Location?partof has something to find
    parent = await (await client.get(f"/api/v1/units/{ward}", headers=admin)).json()
    child = {"organisation_id": parent["organisation"]["id"], "parent_id": ward, "name": "Avd 52 mottagning",
             "unit_type": "ward"}  # fmt: skip
    assert (await client.post("/api/v1/units", json=child, headers=admin)).status == 201
    endpoint = {"unit_id": ward, "name": "Avd 52 FHIR", "connection_type": "hl7-fhir-rest",
                "address": "https://brygga.example/fhir"}  # fmt: skip
    assert (await client.post("/api/v1/endpoints", json=endpoint, headers=admin)).status == 201
    metadata = await (await client.get("/fhir/metadata")).json()
    validate(metadata)
    for declared in metadata["rest"][0]["resource"]:
        resource_type = declared["type"]
        resources = await crawl(client, resource_type, headers)
        assert resources, f"{resource_type}: nothing to crawl"
        for resource in resources:
            assert resource["meta"]["profile"] == [declared["profile"]]
            if resource_type == "Endpoint" and resource["connectionType"]["code"] == "hl7-fhir-rest":
                assert (
                    resource["connectionType"]["system"]
                    == "http://terminology.hl7.org/CodeSystem/endpoint-connection-type"
                )
        for param in declared["searchParam"]:
            name = param["name"]
            if name == "_summary":
                counted = await get_bundle(client, f"/fhir/{resource_type}", headers, _summary="count")
                assert counted["total"] == len(resources) and "entry" not in counted
                continue
            if name == "organization":
                field = ORGANIZATION_OF.get(resource_type)
                positive = _ref(field) if field else (lambda r: f"Organization/{r['id']}")
            else:
                positive = POSITIVE[name]
            carrier = next((r for r in resources if positive(r)), None)
            assert carrier is not None, f"{resource_type}?{name}: no resource to search for"
            value = str(positive(carrier))
            only = [] if name == "_id" else [("_id", carrier["id"])]  # the carrier alone, or nothing
            hit = await get_bundle(client, f"/fhir/{resource_type}", headers, (name, value), *only)
            assert hit["total"] == 1, f"{resource_type}?{name}={value} does not find {carrier['id']}"
            wrong = NEGATIVE.get(name) or OPPOSITE[value]
            miss = await get_bundle(client, f"/fhir/{resource_type}", headers, (name, wrong), *only)
            assert miss["total"] == 0, f"{resource_type}?{name}={wrong} finds {carrier['id']}"
        for include in declared.get("searchInclude", []):
            bundle = await get_bundle(client, f"/fhir/{resource_type}", headers, _include=include, _count="100")
            included = [e for e in bundle.get("entry", []) if e["search"]["mode"] == "include"]
            assert included or resource_type != "PractitionerRole", include  # the others may refer to matches
        for include in declared.get("searchRevInclude", []):
            bundle = await get_bundle(client, f"/fhir/{resource_type}", headers, _revinclude=include, _count="100")
            source = include.split(":")[0]
            referring = [e for e in bundle.get("entry", []) if e["search"]["mode"] == "include"]
            assert all(e["resource"]["resourceType"] == source for e in referring), include


async def test_revinclude_brings_the_locations_of_an_organisation(client, demo):
    organisations = await get_bundle(client, "/fhir/Organization", {}, name="nacka", _count="100")
    ids = [e["resource"]["id"] for e in organisations["entry"]]
    both = await get_bundle(
        client, "/fhir/Organization", {}, name="nacka", _count="100", _revinclude="Location:organization"
    )
    included = [e["resource"] for e in both["entry"] if e["search"]["mode"] == "include"]
    assert included and {r["resourceType"] for r in included} == {"Location"}
    assert all(r["managingOrganization"]["reference"].split("/")[1] in ids for r in included)
    bad = await client.get("/fhir/Organization", params={"_revinclude": "Location:nothing"})
    assert bad.status == 400
