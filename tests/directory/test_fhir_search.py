"""FHIR R4 search by the book (issue 14, ITI-90): tokens with systems, strings folded on every type and OR-ed by
commas, LIKE wildcards literal, _lastUpdated at every precision, _summary=count, lenient handling, POST _search
links, XML refused with 406."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlsplit

from tests.directory.conftest import AV52, VC_NACKA, unit_id

HSA = "urn:oid:1.2.752.29.4.19"


async def ids(client, path: str, **kwargs) -> set[str]:
    response = await client.get(path, **kwargs)
    assert response.status == 200, await response.text()
    return {entry["resource"]["id"] for entry in (await response.json()).get("entry", [])}


async def test_token_and_string_search_by_the_book(client, demo, admin):
    ward = str(await unit_id(demo, AV52))
    primary = str(await unit_id(demo, VC_NACKA))
    for system_value in (AV52, f"{HSA}|{AV52}", f"{HSA}|", f"{AV52},SE0000000000-NONE"):
        assert ward in await ids(client, "/fhir/Location", params={"identifier": system_value, "_count": "500"})
    for negative in (f"|{AV52}", f"urn:oid:9.9|{AV52}", "urn:oid:9.9|", "SE0000000000-NONE"):
        assert ward not in await ids(client, "/fhir/Location", params={"identifier": negative}), negative

    endpoint = await client.post(
        "/api/v1/endpoints",
        json={"unit_id": ward, "name": "Säker inkorg Åsö", "connection_type": "brygga-secure-message",
              "address": "https://brygga.example/inbox"},
        headers=admin,
    )  # fmt: skip
    endpoint_id = (await endpoint.json())["id"]
    route = await client.post(
        f"/api/v1/units/{primary}/routes",
        json={"channel": "phone", "label": "Rådgivning Öster 100%_ok", "value": "+46 8 555 000 11",
              "audience": "public", "hours": "always"},
        headers=admin,
    )  # fmt: skip
    route_id = (await route.json())["id"]
    for name in ("saker", "SÄKER", "inkorg", "aso", "nomatch,säker"):
        assert endpoint_id in await ids(client, "/fhir/Endpoint", params={"name": name}), name
    assert endpoint_id not in await ids(client, "/fhir/Endpoint", params={"name": "korg"})
    assert endpoint_id in await ids(client, "/fhir/Endpoint", params={"name:contains": "KORG"})
    for name in ("radgivning", "RÅDGIVNING", "öster", "oster", "x,rådg", "100%"):
        assert route_id in await ids(client, "/fhir/HealthcareService", params={"name": name}), name
    for name in ("r_dgivning", "%dgivning", "100%x"):  # wildcards are literal characters
        assert route_id not in await ids(client, "/fhir/HealthcareService", params={"name": name}), name
    assert primary in await ids(client, "/fhir/Location", params={"name": "nonexistent,nacka vardc", "_count": "500"})


async def test_dates_summary_lenient_post_links_and_formats(client, demo):
    everything = await (await client.get("/fhir/Location", params={"_count": "500"})).json()
    total = everything["total"]
    assert total > 2
    year = everything["entry"][0]["resource"]["meta"]["lastUpdated"][:4]
    for value, expected in (
        (year, total), (f"eq{year}", total), (f"ne{year}", 0), (f"ge{year}", total), (f"le{year}", total),
        (f"gt{year}", 0), (f"sa{year}", 0), (f"lt{year}", 0), (f"eb{year}", 0),
        (f"{year}-{everything['entry'][0]['resource']['meta']['lastUpdated'][5:7]}", None),
        ("ge2000-01-01T00:00Z", total), ("lt2000-01-01T00:00:00Z", 0), ("ge2000-01", total),
    ):  # fmt: skip
        found = await (await client.get("/fhir/Location", params={"_lastUpdated": value, "_summary": "count"})).json()
        assert "entry" not in found
        if expected is not None:
            assert found["total"] == expected, value
        else:
            assert 0 < found["total"] <= total, value
    bad = await client.get("/fhir/Location", params={"_lastUpdated": "2026-13"})
    assert bad.status == 400 and (await bad.json())["resourceType"] == "OperationOutcome"

    strict = await client.get("/fhir/Location", params={"_sort": "name", "name": "nacka"})
    assert strict.status == 400 and (await strict.json())["resourceType"] == "OperationOutcome"
    lenient = await client.get(
        "/fhir/Location", params={"_sort": "name", "name": "nacka"}, headers={"Prefer": "handling=lenient"}
    )
    assert lenient.status == 200
    assert "_sort" not in (await lenient.json())["link"][0]["url"]

    posted = await client.post("/fhir/Location/_search", data={"name": "nacka", "_count": "1"})
    assert posted.status == 200, await posted.text()
    links = {link["relation"]: link["url"] for link in (await posted.json())["link"]}
    for relation in ("self", "next"):
        query = dict(parse_qsl(urlsplit(links[relation]).query))
        assert query["name"] == "nacka" and query["_count"] == "1", links
    following = await (await client.get(links["next"].split("/fhir", 1)[1].join(["/fhir", ""]))).json()
    assert following["total"] == (await posted.json())["total"]

    for params, headers in (({"_format": "xml"}, {}), ({}, {"Accept": "application/fhir+xml"})):
        refused = await client.get("/fhir/Location", params=params, headers=headers)
        assert refused.status == 406 and (await refused.json())["resourceType"] == "OperationOutcome"
    ok = await client.get("/fhir/Location", headers={"Accept": "application/fhir+json, application/fhir+xml;q=0.5"})
    assert ok.status == 200
