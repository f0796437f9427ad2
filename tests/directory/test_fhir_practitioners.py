"""FHIR Practitioner and PractitionerRole (issue 14, mCSD): only unit memberships marked public appear; every
change of what they show is a new version in `_history`; unpublishing, removal and a disabled account show
as deletions."""

from __future__ import annotations

import uuid

from server.core.models import User
from server.identity import service
from tests.directory.conftest import AV52, PUBLICATION, VC_NACKA, publish, unit_id
from tests.directory.test_fhir import fhir_get

HSA = "urn:oid:1.2.752.29.4.19"


async def history(client, path: str, headers=None) -> list[dict]:
    return (await fhir_get(client, f"{path}/_history", headers=headers)).get("entry", [])


async def test_a_membership_that_is_not_public_never_appears(client, demo, actors, admin, staff):
    ward = await unit_id(demo, AV52)
    await actors.user("hidden", units={ward: "member"})
    for headers in ({}, admin, staff):
        for resource_type in ("Practitioner", "PractitionerRole"):
            assert (await fhir_get(client, f"/fhir/{resource_type}", headers=headers))["total"] == 0
            assert await history(client, f"/fhir/{resource_type}", headers) == []


async def test_publishing_creates_a_version_visible_in_history(client, demo, nurse, staff):
    role_id, user_id = nurse["practitioner_role_id"], nurse["user_id"]
    assert nurse["public"] is True and nurse["fhir_version"] == 1
    role = await fhir_get(client, f"/fhir/PractitionerRole/{role_id}")
    assert role["meta"]["versionId"] == "1"
    assert role["meta"]["profile"] == [
        "https://profiles.ihe.net/ITI/mCSD/StructureDefinition/IHE.mCSD.PractitionerRole"
    ]
    assert role["code"] == [
        {"text": "Sjuksköterska", "coding": [{"system": "http://terminology.hl7.org/CodeSystem/practitioner-role",
                                              "code": "nurse"}]}
    ]  # fmt: skip
    ward = str(await unit_id(demo, AV52))
    assert role["practitioner"] == {"reference": f"Practitioner/{user_id}"}
    assert role["organization"] == {"reference": f"Organization/{ward}"}
    assert role["location"] == [{"reference": f"Location/{ward}"}]
    person = await fhir_get(client, f"/fhir/Practitioner/{user_id}")
    assert person["name"] == [{"use": "official", "text": "Anna Ekström"}]
    assert person["identifier"] == [{"use": "official", "system": HSA, "value": "SE2321000016-AEK1"}]
    for path in (f"/fhir/PractitionerRole/{role_id}", f"/fhir/Practitioner/{user_id}", "/fhir/PractitionerRole"):
        entries = await history(client, path)
        assert [(e["request"]["method"], e["response"]["etag"]) for e in entries] == [("POST", 'W/"1"')]
    found = await fhir_get(client, "/fhir/Practitioner", name="ekstrom", headers=staff)
    assert [e["resource"]["id"] for e in found["entry"]] == [user_id]


async def test_a_title_change_bumps_the_version_and_etag_and_nothing_else_does(client, demo, nurse, admin):
    ward, user_id, role_id = await unit_id(demo, AV52), nurse["user_id"], nurse["practitioner_role_id"]
    changed = await publish(client, admin, ward, user_id, role_title="Distriktssköterska", role_code="nurse")
    assert changed["fhir_version"] == 2 and changed["practitioner_role_id"] == role_id
    again = await publish(client, admin, ward, user_id, role_title="Distriktssköterska", role_code="nurse")
    assert again["fhir_version"] == 2  # nothing shown changed: no new version
    response = await client.get(f"/fhir/PractitionerRole/{role_id}")
    assert response.headers["ETag"] == 'W/"2"'
    assert (await response.json())["code"][0]["text"] == "Distriktssköterska"
    entries = await history(client, f"/fhir/PractitionerRole/{role_id}")
    assert [e["request"]["method"] for e in entries] == ["PUT", "POST"]
    old = await fhir_get(client, f"/fhir/PractitionerRole/{role_id}/_history/1")
    assert old["code"][0]["text"] == "Sjuksköterska"
    person = await history(client, f"/fhir/Practitioner/{user_id}")
    assert len(person) == 1  # the person shows the same


async def test_unpublishing_shows_a_delete_and_old_versions_go(client, demo, nurse, admin):
    ward, user_id, role_id = await unit_id(demo, AV52), nurse["user_id"], nurse["practitioner_role_id"]
    withdrawn = await publish(client, admin, ward, user_id, public=False, role_title="Sjuksköterska")
    assert withdrawn["public"] is False and withdrawn["fhir_version"] == 2
    for path in (f"/fhir/PractitionerRole/{role_id}", f"/fhir/Practitioner/{user_id}"):
        entries = await history(client, path)
        assert entries[0]["request"]["method"] == "DELETE" and "resource" not in entries[0]
        await fhir_get(client, path, status=410)
        await fhir_get(client, f"{path}/_history/1", status=410)
    for resource_type in ("Practitioner", "PractitionerRole"):
        assert (await fhir_get(client, f"/fhir/{resource_type}"))["total"] == 0
    again = await publish(client, admin, ward, user_id, role_title="Sjuksköterska")
    assert again["practitioner_role_id"] == role_id and again["fhir_version"] == 3  # the same resource, back
    assert (await history(client, f"/fhir/PractitionerRole/{role_id}"))[0]["request"]["method"] == "PUT"


async def test_removing_the_membership_or_disabling_the_account_shows_a_delete(client, demo, nurse, admin):
    user_id, role_id = uuid.UUID(nurse["user_id"]), nurse["practitioner_role_id"]
    clinic = await unit_id(demo, VC_NACKA)
    async with demo.db.transaction() as session:
        user = await session.get(User, user_id)
        await service.set_membership(session, user, clinic, "member")
    second = await publish(client, admin, clinic, user_id, role_title="Sjuksköterska")
    async with demo.db.transaction() as session:
        await service.remove_membership(session, await session.get(User, user_id), await unit_id(demo, AV52))
    assert (await history(client, f"/fhir/PractitionerRole/{role_id}"))[0]["request"]["method"] == "DELETE"
    await fhir_get(client, f"/fhir/Practitioner/{user_id}")  # still published through the clinic
    async with demo.db.transaction() as session:
        await service.set_disabled(session, await session.get(User, user_id), True)
    await fhir_get(client, f"/fhir/PractitionerRole/{second['practitioner_role_id']}", status=410)
    await fhir_get(client, f"/fhir/Practitioner/{user_id}", status=410)


async def test_search_include_and_revinclude(client, demo, nurse):
    user_id, role_id = nurse["user_id"], nurse["practitioner_role_id"]
    ward = await unit_id(demo, AV52)
    roles = await fhir_get(
        client, "/fhir/PractitionerRole", practitioner=user_id, _include="PractitionerRole:practitioner"
    )
    assert [(e["resource"]["resourceType"], e["search"]["mode"]) for e in roles["entry"]] == [
        ("PractitionerRole", "match"),
        ("Practitioner", "include"),
    ]
    for params in ({"organization": f"Organization/{ward}"}, {"location": str(ward)}, {"role": "nurse"}):
        assert (await fhir_get(client, "/fhir/PractitionerRole", **params))["total"] == 1, params
    people = await fhir_get(client, "/fhir/Practitioner", _id=user_id, _revinclude="PractitionerRole:practitioner")
    assert [e["resource"]["id"] for e in people["entry"]] == [user_id, role_id]
    located = await fhir_get(client, "/fhir/Location", _id=str(ward), _revinclude="PractitionerRole:location")
    assert role_id in [e["resource"]["id"] for e in located["entry"]]
    assert (await fhir_get(client, "/fhir/Practitioner", identifier=f"{HSA}|SE2321000016-AEK1"))["total"] == 1


async def test_publication_needs_a_membership_and_a_sound_body(client, demo, actors, admin, nurse):
    ward = await unit_id(demo, AV52)
    stranger, _token = await actors.user("stranger")
    path = PUBLICATION.format(unit=ward, user=stranger)
    response = await client.put(path, json={"public": True}, headers=admin)
    assert response.status == 404 and (await response.json())["code"] == "not_found"
    bad = await client.put(path, json={"public": True, "role_code": "no spaces"}, headers=admin)
    assert bad.status == 422
    members = await client.get(f"/api/v1/units/{ward}/members", headers=admin)
    assert members.status == 403  # directory administrators publish; they do not see who is a member


async def test_seed_demo_publishes_three_people_once(client, demo):
    from server.identity.demo import seed_demo as seed_people

    await seed_people(demo)
    await seed_people(demo)  # idempotent: no second version
    people = await fhir_get(client, "/fhir/Practitioner", _count="100")
    assert sorted(e["resource"]["name"][0]["text"] for e in people["entry"]) == [
        "Hanna Holm",
        "Leo Lind",
        "Sara Sjöberg",
    ]
    assert len(await history(client, "/fhir/PractitionerRole")) == 3
    doctor = await fhir_get(client, "/fhir/PractitionerRole", role="doctor")
    assert doctor["entry"][0]["resource"]["code"][0]["text"] == "Läkare"


async def test_deleting_the_unit_or_renaming_the_person_is_a_new_version(client, demo, nurse, admin):
    user_id, role_id = uuid.UUID(nurse["user_id"]), nurse["practitioner_role_id"]
    async with demo.db.transaction() as session:
        user = await session.get(User, user_id)
        user.issuer = "https://idp.example"  # an external account: the provider's name wins at login
        await service.user_from_claims(session, user.issuer, {"sub": user.subject, "name": "Anna Ek"})
    renamed = await fhir_get(client, f"/fhir/Practitioner/{user_id}")
    assert renamed["meta"]["versionId"] == "2" and renamed["name"][0]["text"] == "Anna Ek"
    ward = await unit_id(demo, AV52)
    etag = (await client.get(f"/api/v1/units/{ward}", headers=admin)).headers["ETag"]
    response = await client.delete(f"/api/v1/units/{ward}", headers={**admin, "If-Match": etag})
    assert response.status == 204, await response.text()
    await fhir_get(client, f"/fhir/PractitionerRole/{role_id}", status=410)
    await fhir_get(client, f"/fhir/Practitioner/{user_id}", status=410)
