"""Monthly statistics of a generated year (100,000 cases) equal an independent computation from the records."""

from __future__ import annotations

from collections import defaultdict
from datetime import date, timedelta
from zoneinfo import ZoneInfo

import pytest

from server.discharge.generate import generate_year
from server.discharge.routes import DISCHARGE
from tests.conftest import bearer

STOCKHOLM = ZoneInfo("Europe/Stockholm")
K = 5


def day(at) -> date:
    return at.astimezone(STOCKHOLM).date()


def expected_cells(records: list[dict]) -> dict[tuple, list[int]]:
    """Straight from the records, per the definitions in docs/discharge.md (not the server's code)."""
    readmitted: set[str] = set()
    by_patient: dict[str, list[dict]] = defaultdict(list)
    for record in records:
        by_patient[record["patient_key"]].append(record)
    for stays in by_patient.values():
        for earlier in stays:
            for later in stays:
                gap = later["admitted_at"] - earlier["discharged_at"]
                if later["unplanned"] and timedelta(0) <= gap <= timedelta(days=7):
                    readmitted.add(earlier["case_ref"])
    cells: dict[tuple, list[int]] = defaultdict(lambda: [0, 0, 0, 0, 0])
    for record in records:
        discharged = day(record["discharged_at"])
        ready_days = (discharged - day(record["ready_at"])).days
        payment_days = 0
        if record["admission_notice_at"] is not None:
            payment_days = max(0, (discharged - (day(record["ready_at"]) + timedelta(days=3))).days)
        older = record["age_band"] == "65_plus"
        figures = [1, ready_days, payment_days, int(older), int(older and record["case_ref"] in readmitted)]
        month = discharged.strftime("%Y-%m")
        keys = [(month, record["municipality_code"], None)]
        if record["district"]:
            keys.append((month, "0180", record["district"]))
        for key in keys:
            cells[key] = [a + b for a, b in zip(cells[key], figures, strict=True)]
    return cells


@pytest.mark.slow
async def test_a_generated_year_matches_an_independent_computation(client, ctx, actors):
    ward = await actors.unit("Avdelning 1")
    _, token = await actors.user("analytiker")
    records = generate_year(100_000, [ward], year=2025)
    async with ctx.db.transaction() as session:
        await ctx.need(DISCHARGE).import_cases(session, records)
    expected = expected_cells(records)
    assert len({r["municipality_code"] for r in records}) == 26

    query = "?first_month=2025-01&last_month=2026-03"
    response = await client.get("/api/v1/discharge/statistics" + query, headers=bearer(token))
    cells = (await response.json())["items"]
    assert {(c["month"], c["municipality_code"], c["district"]) for c in cells} == set(expected)
    readmissions_shown = 0
    for cell in cells:
        key = (cell["month"], cell["municipality_code"], cell["district"])
        cases, ready, payment, older, readmitted = expected[key]
        if cases < K:
            assert cell["suppressed"] and cell["cases"] is None and cell["ready_days"] is None
            continue
        if cell["cases"] is None:  # complementary suppression: a second district of a month with one hidden
            assert cell["district"] is not None
            continue
        assert (cell["cases"], cell["ready_days"], cell["payment_days"]) == (cases, ready, payment)
        if 0 < readmitted < K or 0 < older < K:
            assert cell["readmissions_65_plus"] is None and cell["suppressed"]
        else:
            assert (cell["discharges_65_plus"], cell["readmissions_65_plus"]) == (older, readmitted)
            readmissions_shown += readmitted
    assert readmissions_shown > 1000  # the year has readmissions, and most cells show them
    assert any(cell["suppressed"] for cell in cells)  # small districts in some months

    csv = await client.get("/api/v1/discharge/statistics.csv" + query, headers=bearer(token))
    lines = (await csv.text()).splitlines()
    assert lines[0].startswith("month;municipality_code;municipality;district;cases")
    assert len(lines) == len(cells) + 1
    assert not any("GEN-" in line for line in lines)  # no case references
