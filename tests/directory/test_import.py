"""Import/export: all-or-nothing, every rejected row reported with its line, progress on the CLI, round trip."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from datetime import date, time

import pytest
from sqlalchemy import func, select

from server.core.models import Organisation, Unit
from server.directory.importer import CSV_COLUMNS
from server.directory.models import ContactRoute, DirectoryVersion
from server.directory.timespans import format_timespan, parse_timespan

ORG = {"organisation_number": "2321000016", "organisation_name": "Region Stockholm", "organisation_kind": "region"}


def row(index: int, **overrides: str) -> dict[str, str]:
    base = {
        **ORG,
        "unit_hsa_id": f"SE2321000016-IMP{index}",
        "unit_name": f"Importerad avdelning {index}",
        "unit_type": "ward",
        "municipality_code": "0180",
        "street": "Sjukhusbacken 10",
        "postal_code": "11883",
        "town": "Stockholm",
        "aliases": f"Imp {index}|Avd {index}",
        "route_purpose": "discharge_planning",
        "route_channel": "phone",
        "route_label": "Vårdplanering",
        "route_value": "+46 8 123 000 00",
        "route_audience": "staff",
        "route_rank": "20",
        "route_hours": "1#5#08:00#16:00;6#7#09:00#13:00##2026-06-01#2026-08-31#closed_on_holidays",
    }
    base.update(overrides)
    return base


def to_csv(rows: list[dict[str, str]]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_COLUMNS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


BROKEN = [
    {"unit_hsa_id": ""},
    {"unit_hsa_id": "SE232100016-X"},
    {"unit_hsa_id": "SE2321000016-ÅÄÖ"},
    {"unit_hsa_id": "SE2321000016-" + "A" * 25},
    {"unit_name": ""},
    {"unit_type": "hospital"},
    {"municipality_code": "0999"},
    {"postal_code": "1188"},
    {"route_channel": "pigeon"},
    {"route_purpose": "gossip"},
    {"route_value": "ring oss"},
    {"route_audience": "everyone"},
    {"route_rank": "first"},
    {"route_hours": "1#5#08:00"},
    {"route_hours": "0#5#08:00#16:00"},
    {"route_hours": "1#5#8h#16:00"},
    {"route_hours": "1#5#08:00#08:00"},
    {"route_hours": "1#5#08:00#16:00##2026-13-01"},
    {"route_hours": "1#5#08:00#16:00####sometimes"},
    {"organisation_number": "2321000017", "organisation_name": ""},
]


def count_rows(ctx, model):
    async def count():
        async with ctx.db.transaction() as session:
            return await session.scalar(select(func.count()).select_from(model))

    return count()


def test_hsa_timespan_strings_round_trip():
    span = parse_timespan("6#7#09:00#15:00#Helg#2026-06-01#2026-08-31")
    assert (span.from_day, span.to_day, span.from_time, span.to_time) == (6, 7, time(9), time(15))
    assert (span.comment, span.from_date, span.to_date) == ("Helg", date(2026, 6, 1), date(2026, 8, 31))
    assert format_timespan(span) == "6#7#09:00#15:00#Helg#2026-06-01#2026-08-31"
    all_day = parse_timespan("1#7#00:00#24:00")
    assert all_day.all_day and format_timespan(all_day) == "1#7#00:00#24:00"
    night = parse_timespan("5#6#22:00#07:00")
    assert night.from_time == time(22) and night.to_time == time(7)
    for bad in ("1#5#08:00", "8#1#08:00#16:00", "1#5#25:00#26:00", "a#b#c#d"):
        with pytest.raises(ValueError):
            parse_timespan(bad)


async def test_twenty_broken_rows_are_all_reported_and_nothing_is_committed(client, admin, ctx):
    rows = [row(index) for index in range(1, 31)]
    broken_lines = []
    for number, change in enumerate(BROKEN):
        index = 2 + number  # rows 2..21 are broken; line = data row + 1 for the header
        rows[index - 1] = row(index, **change)
        broken_lines.append(index + 1)
    before = await count_rows(ctx, Unit)
    response = await client.post(
        "/api/v1/directory/import", data=to_csv(rows).encode(), headers={**admin, "Content-Type": "text/csv"}
    )
    assert response.status == 200, await response.text()
    report = await response.json()
    assert report["committed"] is False
    assert len(report["errors"]) == 20, report["errors"]
    assert sorted(error["line"] for error in report["errors"]) == broken_lines
    assert all(error["reason"] for error in report["errors"])
    assert await count_rows(ctx, Unit) == before
    assert await count_rows(ctx, ContactRoute) == 0
    assert await count_rows(ctx, Organisation) == 0


async def test_json_import_reports_lines_and_dry_run_writes_nothing(client, admin, ctx):
    document = {
        "organisations": [{"name": "Region Stockholm", "kind": "region", "org_number": "2321000016"}],
        "units": [
            {
                "hsa_id": "SE2321000016-J1",
                "organisation_number": "2321000016",
                "name": "Avd J1",
                "unit_type": "ward",
                "routes": [
                    {
                        "channel": "secure_message",
                        "label": "Inkorg",
                        "value": "brygga:unit:J1",
                        "hours": ["1#5#08:00#16:00"],
                    }
                ],
            },
            {
                "hsa_id": "SE2321000016-J2",
                "organisation_number": "2321000016",
                "name": "Avd J2",
                "unit_type": "ward",
                "routes": [{"channel": "phone", "label": "Tel", "value": "nej", "hours": "always"}],
            },
        ],
    }
    text = json.dumps(document, indent=2, ensure_ascii=False)
    rejected = await client.post(
        "/api/v1/directory/import", data=text.encode(), headers={**admin, "Content-Type": "application/json"}
    )
    report = await rejected.json()
    assert report["committed"] is False and len(report["errors"]) == 1
    lines = text.splitlines()
    starts = [n for n, line in enumerate(lines, start=1) if line == "    {" and n > lines.index('  "units": [')]
    expected_line = starts[1]  # where units[1] begins
    assert report["errors"][0]["line"] == expected_line
    assert report["errors"][0]["record"].startswith("units[1]")
    document["units"][1]["routes"][0]["value"] = "+46 8 100 000 00"
    dry = await client.post(
        "/api/v1/directory/import",
        params={"dry_run": "true"},
        data=json.dumps(document).encode(),
        headers={**admin, "Content-Type": "application/json"},
    )
    dry_report = await dry.json()
    assert dry_report["errors"] == [] and dry_report["committed"] is False and dry_report["units_created"] == 2
    assert await count_rows(ctx, Unit) == 0
    done = await client.post(
        "/api/v1/directory/import",
        data=json.dumps(document).encode(),
        headers={**admin, "Content-Type": "application/json"},
    )
    assert (await done.json())["committed"] is True
    assert await count_rows(ctx, Unit) == 2
    # Importing the same file again updates in place (upsert by HSA-id), it does not duplicate.
    again = await (
        await client.post(
            "/api/v1/directory/import",
            data=json.dumps(document).encode(),
            headers={**admin, "Content-Type": "application/json"},
        )
    ).json()
    assert again["units_updated"] == 0 and again["units_created"] == 0  # unchanged: no new versions
    assert await count_rows(ctx, Unit) == 2


def brygga(settings, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "BRYGGA_DATA_DIR": str(settings.data_dir)}
    return subprocess.run([sys.executable, "-m", "server", *args], env=env, capture_output=True, text=True, timeout=240)


async def test_clean_ten_thousand_row_import_with_progress_and_export_round_trip(migrated, tmp_path):
    rows = [row(index) for index in range(1, 10_001)]
    path = tmp_path / "katalog.csv"
    path.write_text(to_csv(rows), encoding="utf-8")
    dry = brygga(migrated, "directory", "import", str(path), "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "Dry run OK" in dry.stdout
    result = brygga(migrated, "directory", "import", str(path))
    assert result.returncode == 0, result.stderr[-2000:]
    assert "checked 10000 rows" in result.stderr
    assert "wrote 10000 of 10000 units" in result.stderr
    assert "units 10000 new" in result.stdout

    from server.core.db import Database

    db = Database(migrated.effective_database_url)
    try:
        async with db.transaction() as session:
            assert await session.scalar(select(func.count()).select_from(Unit)) == 10_000
            assert await session.scalar(select(func.count()).select_from(ContactRoute)) == 10_000
            versions = await session.scalar(select(func.count()).select_from(DirectoryVersion))
            assert versions == 1 + 10_000 + 10_000
    finally:
        await db.close()

    exported = tmp_path / "export.csv"
    assert brygga(migrated, "directory", "export", "-o", str(exported)).returncode == 0
    lines = exported.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 10_001
    assert "1#5#08:00#16:00;6#7#09:00#13:00##2026-06-01#2026-08-31#closed_on_holidays" in lines[1]
    broken = tmp_path / "broken.csv"
    broken.write_text(to_csv([row(1, unit_type="hospital"), row(2)]), encoding="utf-8")
    refused = brygga(migrated, "directory", "import", str(broken))
    assert refused.returncode == 2
    assert "line 2:" in refused.stdout and "nothing was imported" in refused.stderr


async def test_http_import_accepts_files_above_the_json_body_limit(client, admin, ctx):
    body = to_csv([row(index) for index in range(1, 4001)]).encode()
    assert len(body) > ctx.settings.max_body_bytes
    response = await client.post(
        "/api/v1/directory/import", params={"dry_run": "true"}, data=body, headers={**admin, "Content-Type": "text/csv"}
    )
    assert response.status == 200, await response.text()
    report = await response.json()
    assert report["errors"] == [] and report["units_created"] == 4000 and report["committed"] is False
    ctx.settings.max_upload_bytes = 1000
    too_big = await client.post("/api/v1/directory/import", data=body, headers={**admin, "Content-Type": "text/csv"})
    assert too_big.status == 413
    assert (await too_big.json())["code"] == "payload_too_large"
