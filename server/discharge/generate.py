"""A generated year of discharge cases (statistics bench, its test and the demo): realistic shapes, no people.

Deterministic for a seed. About one case in eight is followed by a readmission of the same pseudonymous
patient 1-10 days after discharge, two thirds of them unplanned.
"""

from __future__ import annotations

import hashlib
import random
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from server.directory.text import MUNICIPALITIES
from server.discharge.stats import DISTRICTS, STOCKHOLM_CITY


def generate_year(
    count: int, ward_unit_ids: list[uuid.UUID], *, year: int = 2025, seed: int = 17, prefix: str = "GEN"
) -> list[dict[str, Any]]:
    rng = random.Random(seed)  # noqa: S311 - generated test data, not secrets
    codes = sorted(MUNICIPALITIES)
    # Stockholm city has about a third of the county's population: weight it accordingly.
    weights = [10.0 if code == STOCKHOLM_CITY else 1.0 for code in codes]
    start = datetime(year, 1, 1, tzinfo=UTC)
    records: list[dict[str, Any]] = []
    serial = 0

    def case(patient: str, municipality: str, district: str | None, age_band: str, admitted: datetime,
             unplanned: bool) -> dict[str, Any]:  # fmt: skip
        nonlocal serial
        serial += 1
        ready = admitted + timedelta(hours=rng.randint(24, 24 * 12))
        discharged = ready + timedelta(hours=rng.choice([2, 6, 20, 30, 50, 75, 100, 150, 240]))
        notice = admitted + timedelta(hours=rng.choice([1, 3, 8, 20, 30]))
        return {
            "id": uuid.UUID(int=rng.getrandbits(128)),
            "case_ref": f"{prefix}-{serial:07d}",
            "municipality_code": municipality,
            "district": district,
            "age_band": age_band,
            "ward_unit_id": rng.choice(ward_unit_ids),
            "admitted_at": admitted,
            "admission_notice_at": notice if rng.random() < 0.93 else None,
            "ready_at": ready,
            "discharged_at": discharged,
            "unplanned": unplanned,
            "patient_key": patient,
        }

    while len(records) < count:
        municipality = rng.choices(codes, weights)[0]
        district = rng.choice(DISTRICTS) if municipality == STOCKHOLM_CITY and rng.random() < 0.97 else None
        age_band = "65_plus" if rng.random() < 0.7 else "under_65"
        patient = hashlib.sha256(f"{seed}-{len(records)}".encode()).hexdigest()
        admitted = start + timedelta(minutes=rng.randint(0, 350 * 24 * 60))
        first = case(patient, municipality, district, age_band, admitted, rng.random() < 0.8)
        records.append(first)
        if rng.random() < 0.125 and len(records) < count:
            again = first["discharged_at"] + timedelta(hours=rng.randint(12, 240))
            records.append(case(patient, municipality, district, age_band, again, rng.random() < 0.67))
    return records
