"""Deviation reports: personal data refused with what to remove, who sees what, follow-up, statistics."""

from __future__ import annotations

import pytest

DEVIATIONS = "/api/v1/deviations"


def report(text: str = "Inskrivningsmeddelandet kom först på tredje dagen, tre gånger i mars.", **extra) -> dict:
    return {"category": "missing_admission_notice", "occurred_on": "2026-03-02", "text": text, **extra}


@pytest.mark.parametrize(
    ("text", "kinds"),
    [
        ("Patienten 19121212-1212 fick inget inskrivningsmeddelande i tid.", ["personal_number"]),
        ("Samordningsnummer 701063-2391 saknades i underlaget helt.", ["personal_number"]),
        ("Ring anhörig på 070-123 45 67 så förklarar hon mer om det.", ["phone"]),
        ("Kontakta sjuksköterskan på +46 8 123 456 78 för mer information.", ["phone"]),
        ("Skriv till kalle.karlsson@example.se om ärendet och uppföljningen.", ["email"]),
    ],
)
async def test_personal_data_is_refused_with_what_to_remove(site, text, kinds):
    response = await site.client.post(DEVIATIONS, json=report(text), headers=site.h("hanna"))
    body = await response.json()
    assert response.status == 422 and body["code"] == "personal_data_not_allowed"
    assert body["errors"] == [{"field": "text", "kinds": kinds}]
    assert body["detail"].startswith("Remove ") and "1212" not in body["detail"] and "@" not in body["detail"]


async def test_reporter_contact_details_allowed_follow_up_sees_all(site):
    own = report(
        "Kontaktvägen svarade inte på helgen. Nå mig på 08-123 456 78 eller hanna@nacka.se.",
        reporter_phone="+46 8 123 456 78", reporter_email="Hanna@nacka.se", category="contact_route_unanswered",
    )  # fmt: skip
    mine = await site.call("hanna", "POST", DEVIATIONS, own, expect=201)
    assert mine["status"] == "inskickad" and mine["reporter_name"] == "Hanna"
    other = await site.call("olle", "POST", DEVIATIONS, report(), expect=201)
    assert [r["id"] for r in (await site.call("hanna", "GET", DEVIATIONS))["items"]] == [mine["id"]]
    assert (await site.client.get(f"{DEVIATIONS}/{other['id']}", headers=site.h("hanna"))).status == 404
    everything = await site.call("analyst", "GET", DEVIATIONS)
    assert {r["id"] for r in everything["items"]} == {mine["id"], other["id"]}
    assert not any("case" in key for key in everything["items"][0])  # no case references in the follow-up view

    update = {"status": "under_utredning", "answer": "Tack, vi tar upp det med akutsjukhuset."}
    assert (await site.client.patch(f"{DEVIATIONS}/{mine['id']}", json=update, headers=site.h("hanna"))).status == 403
    answered = await site.call("analyst", "PATCH", f"{DEVIATIONS}/{mine['id']}", update)
    assert answered["status"] == "under_utredning" and answered["answered_at"]
    seen = await site.call("hanna", "GET", f"{DEVIATIONS}/{mine['id']}")
    assert seen["answer"] == "Tack, vi tar upp det med akutsjukhuset."
    bad = {"answer": "Ring patienten på 070-765 43 21."}
    refused = await site.client.patch(f"{DEVIATIONS}/{mine['id']}", json=bad, headers=site.h("analyst"))
    assert refused.status == 422

    query = "?first_month=2026-01&last_month=2026-12"
    counts = await site.call("analyst", "GET", f"{DEVIATIONS}/statistics{query}")
    assert [(c["month"], c["category"], c["reports"]) for c in counts["items"]] == [
        ("2026-03", "contact_route_unanswered", 1), ("2026-03", "missing_admission_notice", 1)
    ]  # fmt: skip
    csv = await site.call("analyst", "GET", f"{DEVIATIONS}/statistics.csv{query}")
    assert csv.splitlines() == ["month;category;reports", "2026-03;contact_route_unanswered;1",
                                "2026-03;missing_admission_notice;1"]  # fmt: skip
    assert (await site.client.get(f"{DEVIATIONS}/statistics{query}", headers=site.h("hanna"))).status == 403
