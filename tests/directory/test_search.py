"""Search quality: accent/case folding, prefix, typos, ranking, filters and cursors, on SQLite and PostgreSQL."""

from __future__ import annotations

from aiohttp.test_utils import TestClient, TestServer

from server.app import create_app
from server.core.context import CTX
from server.directory.seed import seed_demo
from server.migrate import upgrade
from tests.conftest import Actors, bearer


async def search(client, headers, **params) -> dict:
    response = await client.get("/api/v1/units", params=params, headers=headers)
    assert response.status == 200, await response.text()
    return await response.json()


async def check_search_quality(client, headers) -> None:
    folded = await search(client, headers, q="sodersj")
    assert folded["items"], "sodersj finds nothing"
    assert all("Södersjukhuset" in item["name"] for item in folded["items"])
    typo = await search(client, headers, q="sodersjukhset")
    assert typo["items"] and all("Södersjukhuset" in item["name"] for item in typo["items"])
    assert {item["match"] for item in typo["items"]} == {"fuzzy"}
    upper = await search(client, headers, q="SÖDERSJUKHUSET avdelning 52")
    assert upper["items"][0]["name"] == "Avdelning 52, Medicinkliniken, Södersjukhuset"
    exact = await search(client, headers, q="nacka vardcentral")
    assert exact["items"][0]["name"] == "Nacka vårdcentral"
    assert exact["items"][0]["match"] == "exact"
    words = await search(client, headers, q="hemtj nack")
    assert words["items"][0]["name"] == "Hemtjänst Nacka centrum"
    alias = await search(client, headers, q="avd 52 sos")
    assert alias["items"][0]["name"] == "Avdelning 52, Medicinkliniken, Södersjukhuset"
    hsa = await search(client, headers, q="SE2120003700-HSLNACKA")
    assert hsa["items"][0]["name"] == "Kommunal hälso- och sjukvård Nacka"
    # Exact and prefix hits come before fuzzy ones.
    mixed = await search(client, headers, q="nacka", limit=50)
    matches = [item["match"] for item in mixed["items"]]
    order = {"exact": 0, "prefix": 1, "words": 2, "fuzzy": 3}
    assert matches == sorted(matches, key=order.__getitem__)
    assert mixed["items"][0]["match"] in ("exact", "prefix")
    assert (await search(client, headers, q="qqqzzzxxx"))["items"] == []


async def test_search_quality_sqlite(client, demo, staff):
    await check_search_quality(client, staff)


async def test_typo_tolerance_prefers_exact_and_prefix_hits(client, demo, admin, staff):
    organisation = (await search(client, staff, q="nacka vardcentral"))["items"][0]["organisation_id"]
    created = await client.post(
        "/api/v1/units",
        json={"organisation_id": organisation, "name": "Södersjukhset testenhet", "unit_type": "ward"},
        headers=admin,
    )
    assert created.status == 201
    # "sodersjukhset" is now a real word: its exact/prefix hit ranks first, fuzzy ones follow.
    result = await search(client, staff, q="sodersjukhset", limit=5)
    assert result["items"][0]["name"] == "Södersjukhset testenhet"
    assert result["items"][0]["match"] in ("exact", "prefix")


async def every_page(client, headers, **params) -> list[list[dict]]:
    """Follow next_cursor from the first page to the last."""
    pages: list[list[dict]] = []
    cursor = None
    while True:
        page = await search(client, headers, **params, **({"cursor": cursor} if cursor else {}))
        pages.append(page["items"])
        cursor = page["next_cursor"]
        if not cursor:
            return pages


async def test_filters_and_cursor_pagination(client, demo, staff):
    pages = await every_page(client, staff, q="avdelning", limit=7, type="ward")
    seen = [item["id"] for page in pages for item in page]
    assert all(item["unit_type"] == "ward" for page in pages for item in page)
    assert len(seen) == len(set(seen)) == 70  # 7 hospitals x 5 clinics x 2 wards
    assert len(pages) == 10
    listing = [item["name"] for page in await every_page(client, staff, municipality="0182", limit=2) for item in page]
    assert listing == sorted(listing, key=str.casefold)
    assert "Nacka vårdcentral" in listing and "Hemtjänst Nacka centrum" in listing
    bad = await client.get("/api/v1/units", params={"cursor": "not-a-cursor!"}, headers=staff)
    assert bad.status == 400


async def test_search_on_postgresql(pg_database, settings):
    settings.database_url = pg_database
    await upgrade(pg_database)
    app = create_app(settings)
    async with TestClient(TestServer(app)) as client:
        ctx = client.app[CTX]
        await seed_demo(ctx)
        feed = await ctx.db.engine.connect()
        try:
            from sqlalchemy import text

            versions = (await feed.execute(text("SELECT count(*) FROM directory_versions"))).scalar()
            await feed.rollback()
            assert await seed_demo(ctx)  # idempotent: a second run changes nothing
            assert (await feed.execute(text("SELECT count(*) FROM directory_versions"))).scalar() == versions
        finally:
            await feed.close()
        _user, token = await Actors(ctx).user("pgstaff")
        await check_search_quality(client, bearer(token))
        await check_swedish_forms(client, bearer(token))
        page = await search(client, bearer(token), q="avdelning", limit=30, type="ward")
        second = await search(client, bearer(token), q="avdelning", limit=30, type="ward", cursor=page["next_cursor"])
        assert not {i["id"] for i in page["items"]} & {i["id"] for i in second["items"]}


async def test_word_hits_page_without_repeats_across_the_sort_threshold(client, demo, admin, staff):
    organisation = (await search(client, staff, q="nacka vardcentral"))["items"][0]["organisation_id"]
    names = [f"Testenhet Zygmund {number}" for number in range(35)]  # more word hits than are sorted by name
    for name in names:
        created = await client.post(
            "/api/v1/units", json={"organisation_id": organisation, "name": name, "unit_type": "ward"}, headers=admin
        )
        assert created.status == 201
    pages = await every_page(client, staff, q="zygmund", limit=20)
    assert {item["match"] for page in pages for item in page} == {"words"}
    seen = [item["name"] for page in pages for item in page]
    assert sorted(seen) == sorted(names)  # every unit once: pages agree on one order


async def check_swedish_forms(client, headers) -> None:
    """How staff write units: abbreviations, HSA-ids in any case or by local part, ends of compounds."""
    hsl = "Kommunal hälso- och sjukvård Nacka"
    for query in ("hemsjukvård nacka", "KHS Nacka", "hsl nacka"):
        found = await search(client, headers, q=query)
        assert found["items"] and found["items"][0]["name"] == hsl, (query, found["items"][:3])
    for query in ("se2120003700-hslnacka", "hslnacka", "HSLNacka"):
        found = await search(client, headers, q=query)
        assert found["items"][0]["name"] == hsl, (query, found["items"][:3])
    local = await search(client, headers, q="7av52")
    assert local["items"][0]["name"] == "Avdelning 52, Medicinkliniken, Södersjukhuset"
    infix = await search(client, headers, q="hemtjänst tälje")  # the end of a town's name
    assert sorted(item["name"] for item in infix["items"][:2]) == ["Hemtjänst Norrtälje", "Hemtjänst Södertälje"]
    assert {item["match"] for item in infix["items"][:2]} == {"words"}


async def test_swedish_forms_sqlite(client, demo, staff):
    await check_swedish_forms(client, staff)


async def create_unit(client, admin, organisation: str, name: str, municipality: str, town: str) -> None:
    body = {"organisation_id": organisation, "name": name, "unit_type": "primary_care",
            "municipality_code": municipality, "address": {"town": town}}  # fmt: skip
    created = await client.post("/api/v1/units", json=body, headers=admin)
    assert created.status == 201, await created.text()


async def test_abbreviations_and_saint_find_written_out_names(client, demo, admin, staff):
    organisation = (await search(client, staff, q="nacka vardcentral"))["items"][0]["organisation_id"]
    for name in ("Vårdcentral Gustavsberg", "Äldreboendet Tallgården", "Korttidsboende Ekgården",
                 "S:t Eriks ögonsjukhus", "Sankt Botvids vårdcentral"):  # fmt: skip
        await create_unit(client, admin, organisation, name, "0180", "Stockholm")
    expected = {
        "vc gustavsberg": "Vårdcentral Gustavsberg",
        "vårdcentral gustavsb": "Vårdcentral Gustavsberg",
        "säbo tallg": "Äldreboendet Tallgården",
        "SÄBO tallgården": "Äldreboendet Tallgården",
        "kas ekgården": "Korttidsboende Ekgården",
        "sankt eriks": "S:t Eriks ögonsjukhus",
        "St Eriks": "S:t Eriks ögonsjukhus",
        "S:t Eriks": "S:t Eriks ögonsjukhus",
        "S:t Botvids": "Sankt Botvids vårdcentral",
        "st botvids vc": "Sankt Botvids vårdcentral",
    }
    for query, name in expected.items():
        found = await search(client, staff, q=query)
        assert [item["name"] for item in found["items"]][:1] == [name], (query, found["items"][:3])


async def test_a_place_in_the_query_is_never_corrected_into_another(client, admin):
    created = await client.post("/api/v1/organisations", json={"name": "Testregion", "kind": "region"}, headers=admin)
    organisation = (await created.json())["id"]
    await create_unit(client, admin, organisation, "Rönninge vårdcentral", "0128", "Rönninge")
    await create_unit(client, admin, organisation, "Salen vårdcentral", "0180", "Stockholm")  # one letter off
    # No unit's text says "Salem", but the municipality Salem (0128) holds Rönninge: that is what is meant.
    found = await search(client, admin, q="vårdcentral salem")
    assert [item["name"] for item in found["items"]] == ["Rönninge vårdcentral"]
    assert (await search(client, admin, q="salem"))["items"][0]["name"] == "Rönninge vårdcentral"
    # A real typo is still corrected.
    assert (await search(client, admin, q="vårdcentral salenn"))["items"][0]["name"] == "Salen vårdcentral"
