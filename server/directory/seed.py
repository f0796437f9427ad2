"""Demo directory (idempotent) and a generator for large synthetic directories. Invented names and numbers only.

The seed goes through the same import path as `brygga directory import` (upsert by HSA-id and
organisation number), so re-running it changes nothing and every object gets a version history.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable
from datetime import time
from typing import Any

from sqlalchemy import insert, select

from server.core.context import AppContext
from server.core.models import Organisation, Unit
from server.directory import importer
from server.directory.models import ContactRoute, TimeSpan, search_columns, table_of
from server.directory.search import Vocabulary, optimize_index
from server.directory.text import MUNICIPALITIES, fold, luhn_complete

REGION_NUMBER = "2321000016"
REGION_PREFIX = f"SE{REGION_NUMBER}-"
# Nacka kommun (invented, Luhn-valid). The fixed Nacka demo units keep HSA-ids under the catalogue-owner
# prefix SE2120003700- that other parts of Brygga rely on (an HSA-id prefix is not Luhn-checked).
NACKA_NUMBER = luhn_complete("212000370")

WEEKDAYS = "1#5#08:00#16:30##" + "##closed_on_holidays"
WEEKEND = "6#7#09:00#15:00"


def municipality_number(code: str) -> str:
    """Invented Luhn-valid organisation numbers in the 212000-xxxx series (Nacka keeps NACKA_NUMBER)."""
    if code == "0182":
        return NACKA_NUMBER
    return luhn_complete(f"21200{code}")


def _route(
    purpose: str, channel: str, label: str, value: str, hours: list[str], *, rank: int, audience: str = "staff"
) -> dict[str, Any]:
    return {
        "purpose": purpose,
        "channel": channel,
        "label": label,
        "value": value,
        "audience": audience,
        "rank": rank,
        "hours": hours,
    }


def _inbox(hsa_id: str, hours: list[str], rank: int = 10) -> dict[str, Any]:
    return _route("general", "secure_message", "Brygga-inkorg", f"brygga:unit:{hsa_id}", hours, rank=rank)


def _unit(
    hsa_id: str,
    org_number: str,
    name: str,
    unit_type: str,
    code: str,
    street: str,
    postal: str,
    town: str,
    routes: list[dict[str, Any]],
    aliases: list[str] | None = None,
) -> dict[str, Any]:
    return {
        "hsa_id": hsa_id,
        "organisation_number": org_number,
        "name": name,
        "unit_type": unit_type,
        "municipality_code": code,
        "address": {"street": street, "postal_code": postal, "town": town},
        "aliases": aliases or [],
        "routes": routes,
    }


HOSPITALS = [
    ("Södersjukhuset", "SÖS", "7", "Sjukhusbacken 10", "11883", "Stockholm", "0180"),
    ("Karolinska Universitetssjukhuset Solna", "KS Solna", "K", "Eugeniavägen 3", "17176", "Solna", "0184"),
    ("Karolinska Universitetssjukhuset Huddinge", "KS Huddinge", "H", "Hälsovägen 13", "14157", "Huddinge", "0126"),
    ("Danderyds sjukhus", "DS", "D", "Mörbygårdsvägen 1", "18288", "Danderyd", "0162"),
    ("S:t Görans sjukhus", "S:t Göran", "G", "Sankt Göransplan 1", "11219", "Stockholm", "0180"),
    ("Norrtälje sjukhus", "Norrtälje", "N", "Lasarettsvägen 5", "76145", "Norrtälje", "0188"),
    ("Södertälje sjukhus", "Södertälje", "S", "Rosenborgsgatan 6", "15286", "Södertälje", "0181"),
]
CLINICS = ["Medicinkliniken", "Geriatriska kliniken", "Kirurgkliniken", "Ortopedkliniken", "Strokeenheten"]
PRIMARY_CARE = [
    ("Nacka vårdcentral", "9VCNA", "0182", "Nacka", "Vikdalsvägen 50", "13152"),
    ("Vårdcentral Farsta", "9VCFA", "0180", "Farsta", "Farstagången 6", "12347"),
    ("Vårdcentral Solna centrum", "9VCSO", "0184", "Solna", "Solna torg 3", "17145"),
    ("Huddinge vårdcentral", "9VCHU", "0126", "Huddinge", "Kommunalvägen 8", "14161"),
    ("Täby centrum vårdcentral", "9VCTA", "0160", "Täby", "Stationsvägen 19", "18330"),
    ("Vårdcentral Tullinge", "9VCTL", "0127", "Tullinge", "Tullinge torg 2", "14640"),
    ("Södertälje vårdcentral Brunnsäng", "9VCBR", "0181", "Södertälje", "Brunnsängsvägen 4", "15160"),
    ("Vårdcentral Lidingö", "9VCLI", "0186", "Lidingö", "Stockholmsvägen 37", "18133"),
]


def demo_document() -> dict[str, Any]:
    """The demo directory as an import document (organisations and units with routes)."""
    organisations: list[dict[str, Any]] = [
        {"name": "Region Stockholm", "kind": "region", "org_number": REGION_NUMBER, "hsa_id": "SE2321000016-F835"}
    ]
    units: list[dict[str, Any]] = []
    # Fixed demo units other parts of Brygga rely on.
    units.append(
        _unit(
            "SE2321000016-7AV52",
            REGION_NUMBER,
            "Avdelning 52, Medicinkliniken, Södersjukhuset",
            "ward",
            "0180",
            "Sjukhusbacken 10",
            "11883",
            "Stockholm",
            [
                _inbox("SE2321000016-7AV52", ["1#7#00:00#24:00"], rank=10),
                _route(
                    "discharge_planning",
                    "phone",
                    "Vårdplanerande sjuksköterska",
                    "+46 8 123 452 52",
                    ["1#5#08:00#16:00##" + "##closed_on_holidays"],
                    rank=20,
                ),
                _route("on_call", "phone", "Avdelningen dygnet runt", "+46 8 123 452 00", ["1#7#00:00#24:00"], rank=50),
            ],
            aliases=["Avd 52 SÖS", "Medicin 52"],
        )
    )
    units.append(
        _unit(
            "SE2321000016-9VCNA",
            REGION_NUMBER,
            "Nacka vårdcentral",
            "primary_care",
            "0182",
            "Vikdalsvägen 50",
            "13152",
            "Nacka",
            [
                _inbox("SE2321000016-9VCNA", [WEEKDAYS]),
                _route("general", "phone", "Mottagningen", "+46 8 123 400 00", [WEEKDAYS], rank=20, audience="public"),
                _route(
                    "discharge_planning",
                    "phone",
                    "Distriktssköterska, samordning",
                    "+46 8 123 400 10",
                    ["1#5#09:00#15:00##" + "##closed_on_holidays"],
                    rank=30,
                ),
            ],
            aliases=["VC Nacka"],
        )
    )
    for name, short, letter, street, postal, town, code in HOSPITALS:
        for index, clinic in enumerate(CLINICS):
            for ward in (1, 2):
                number = f"{index + 1}{ward}"
                hsa = f"{REGION_PREFIX}{letter}AV{number}"
                if hsa == "SE2321000016-7AV52":
                    continue
                ward_name = f"Avdelning {number}, {clinic}, {name}"
                units.append(
                    _unit(
                        hsa,
                        REGION_NUMBER,
                        ward_name,
                        "ward",
                        code,
                        street,
                        postal,
                        town,
                        [
                            _inbox(hsa, ["1#7#00:00#24:00"]),
                            _route(
                                "discharge_planning",
                                "phone",
                                "Vårdplanering",
                                f"+46 8 12{index}{ward} {number}0 00",
                                [WEEKDAYS],
                                rank=20,
                            ),
                        ],
                        aliases=[f"Avd {number} {short}"],
                    )
                )
    for name, suffix, code, town, street, postal in PRIMARY_CARE[1:]:
        hsa = REGION_PREFIX + suffix
        units.append(
            _unit(
                hsa,
                REGION_NUMBER,
                name,
                "primary_care",
                code,
                street,
                postal,
                town,
                [
                    _inbox(hsa, [WEEKDAYS]),
                    _route(
                        "general", "phone", "Mottagningen", "+46 8 555 000 00", [WEEKDAYS], rank=20, audience="public"
                    ),
                ],
            )
        )
    for code, municipality in MUNICIPALITIES.items():
        number = municipality_number(code)
        organisations.append(
            {
                "name": f"{municipality} kommun",
                "kind": "municipality",
                "org_number": number,
                "municipality_code": code,
            }
        )
        slug = fold(municipality).replace(" ", "").upper()[:10]
        phone = f"+46 8 {code[1:]} 100 00"
        if code == "0182":
            home_hsa, hsl_hsa = "SE2120003700-HTNACKA", "SE2120003700-HSLNACKA"
            home_name, hsl_name = "Hemtjänst Nacka centrum", "Kommunal hälso- och sjukvård Nacka"
        else:
            home_hsa, hsl_hsa = f"SE{number}-HT{slug}", f"SE{number}-HSL{slug}"
            home_name, hsl_name = f"Hemtjänst {municipality}", f"Kommunal hälso- och sjukvård {municipality}"
        town = municipality
        units.append(
            _unit(
                home_hsa,
                number,
                home_name,
                "home_care",
                code,
                "Kommunhusvägen 1",
                "13181",
                town,
                [
                    _inbox(home_hsa, [WEEKDAYS, "6#7#09:00#15:00"]),
                    _route("discharge_planning", "phone", "Biståndshandläggare", phone, [WEEKDAYS], rank=20),
                    _route(
                        "weekend_discharge",
                        "phone",
                        "Helgmottagning hemtjänst",
                        phone.replace("100", "199"),
                        ["6#7#08:00#20:00", "1#7#08:00#20:00##" + "##holidays_only"],
                        rank=30,
                    ),
                ],
            )
        )
        units.append(
            _unit(
                hsl_hsa,
                number,
                hsl_name,
                "municipal_health_care",
                code,
                "Kommunhusvägen 1",
                "13181",
                town,
                [
                    _inbox(hsl_hsa, [WEEKDAYS]),
                    _route(
                        "discharge_planning",
                        "phone",
                        "Samordnande sjuksköterska",
                        phone.replace("100", "110"),
                        [WEEKDAYS],
                        rank=20,
                    ),
                    _route(
                        "weekend_discharge",
                        "secure_message",
                        "Helgsjuksköterska (inkorg)",
                        f"brygga:unit:{hsl_hsa}",
                        ["6#7#08:00#16:00", "1#7#08:00#16:00##" + "##holidays_only"],
                        rank=25,
                    ),
                    _route(
                        "on_call",
                        "phone",
                        "Sjuksköterska i beredskap",
                        phone.replace("100", "112"),
                        ["1#7#00:00#24:00"],
                        rank=60,
                    ),
                ],
            )
        )
        units.append(
            _unit(
                f"SE{number}-KTB{slug}"[:31],
                number,
                f"Korttidsboende {municipality}",
                "short_term_care",
                code,
                "Vårdvägen 3",
                "13182",
                town,
                [
                    _route(
                        "general", "phone", "Korttidsboendet", phone.replace("100", "120"), ["1#7#00:00#24:00"], rank=20
                    ),
                ],
            )
        )
    return {"organisations": organisations, "units": units}


DEMO_AFFILIATIONS = [  # (primary unit, participating unit): the ward discharges to Nacka's home care and HSL
    ("SE2321000016-7AV52", "SE2120003700-HTNACKA"),
    ("SE2321000016-7AV52", "SE2120003700-HSLNACKA"),
]


async def seed_demo(ctx: AppContext) -> list[str]:
    import json

    from server.directory import schemas
    from server.directory.edits import Edits
    from server.directory.models import Affiliation

    document = demo_document()
    report = await importer.run_import(ctx.db, json.dumps(document, ensure_ascii=False), "json", now=ctx.clock())
    if not report.committed:
        raise RuntimeError(f"demo directory rejected: {report.errors[:3]}")
    async with ctx.db.transaction() as session:
        wanted = {hsa_id for pair in DEMO_AFFILIATIONS for hsa_id in pair}
        ids = dict((await session.execute(select(Unit.hsa_id, Unit.id).where(Unit.hsa_id.in_(wanted)))).all())
        for primary, participating in DEMO_AFFILIATIONS:
            exists = await session.scalar(
                select(Affiliation.id).where(
                    Affiliation.primary_id == ids[primary], Affiliation.participating_id == ids[participating]
                )
            )
            if exists is None:
                body = schemas.AffiliationCreate(
                    primary_id=ids[primary], participating_id=ids[participating], role="discharge-cooperation"
                )
                await Edits(session, None, ctx.clock()).create_affiliation(body)
    return [
        f"Directory: {len(document['organisations'])} organisations, {len(document['units'])} units "
        "(e.g. Avdelning 52 SÖS SE2321000016-7AV52, Hemtjänst Nacka centrum SE2120003700-HTNACKA)."
    ]


# --------------------------------------------------------------------------------------------- generator

PLACES = [
    "Alby",
    "Bagarmossen",
    "Bergshamra",
    "Brandbergen",
    "Bromma",
    "Enskede",
    "Fisksätra",
    "Fittja",
    "Gustavsberg",
    "Hagsätra",
    "Hallunda",
    "Handen",
    "Hässelby",
    "Jakobsberg",
    "Kista",
    "Kungsholmen",
    "Liljeholmen",
    "Märsta",
    "Mörby",
    "Norsborg",
    "Orminge",
    "Rinkeby",
    "Rönninge",
    "Saltsjöbaden",
    "Sickla",
    "Skarpnäck",
    "Skärholmen",
    "Solberga",
    "Spånga",
    "Sätra",
    "Tensta",
    "Tumba",
    "Tyresö strand",
    "Vällingby",
    "Västertorp",
    "Älvsjö",
    "Åkersberga",
    "Årsta",
    "Ösmo",
    "Östermalm",
    "Gubbängen",
    "Högdalen",
    "Flemingsberg",
    "Vårby",
    "Kallhäll",
]
KINDS = [
    ("ward", "Avdelning {n}, {place}s närsjukhus"),
    ("primary_care", "Vårdcentral {place}"),
    ("home_care", "Hemtjänst {place} {n}"),
    ("nursing_home", "Äldreboendet {place}gården"),
    ("short_term_care", "Korttidsboende {place}"),
    ("municipal_health_care", "Hemsjukvård {place}"),
    ("social_services", "Socialtjänst {place} vuxenenhet"),
]
SUFFIXES = ["", " norra", " södra", " östra", " västra", " centrum"]


async def generate(ctx: AppContext, count: int, *, seed: int = 1, progress: Callable[[str], None] | None = None) -> int:
    """Insert `count` synthetic units (with a secure-message and a phone route each), in bulk."""
    rng = random.Random(seed)  # noqa: S311 - synthetic data, not security
    async with ctx.db.transaction() as session:
        orgs = {
            o.municipality_code: o
            for o in (await session.execute(select(Organisation))).scalars()
            if o.municipality_code
        }
        region = (await session.execute(select(Organisation).where(Organisation.org_number == REGION_NUMBER))).scalar()
        if region is None or len(orgs) < len(MUNICIPALITIES):
            raise RuntimeError("run `brygga seed-demo` first: the generator uses its organisations")
        start = await session.scalar(select(Unit.id).where(Unit.source == "generated").limit(1))
        existing = (
            0
            if start is None
            else int(
                await session.scalar(
                    select(Unit.__table__.c.id)
                    .where(Unit.source == "generated")
                    .with_only_columns(__import__("sqlalchemy").func.count())
                )
                or 0
            )
        )
    now = ctx.clock()
    codes = list(MUNICIPALITIES)
    written = 0
    batch = 5000
    for offset in range(0, count, batch):
        units: list[dict[str, Any]] = []
        routes: list[dict[str, Any]] = []
        spans: list[dict[str, Any]] = []
        for index in range(offset, min(offset + batch, count)):
            serial = existing + index + 1
            unit_type, pattern = KINDS[rng.randrange(len(KINDS))]
            place = rng.choice(PLACES) + rng.choice(SUFFIXES)
            code = rng.choice(codes)
            org = region if unit_type in ("ward", "primary_care") else orgs[code]
            name = pattern.format(n=rng.randint(1, 99), place=place) + f" {serial}"
            unit_id = uuid.uuid4()
            hsa_id = f"SE{org.org_number}-G{serial}"
            units.append(
                {
                    "id": unit_id,
                    "organisation_id": org.id,
                    "parent_id": None,
                    "name": name,
                    "unit_type": unit_type,
                    "hsa_id": hsa_id,
                    "municipality_code": code,
                    "active": True,
                    "version": 1,
                    "created_at": now,
                    "updated_at": now,
                    "aliases": [],
                    "street": f"{rng.choice(PLACES)}vägen {rng.randint(1, 80)}",
                    "postal_code": f"1{rng.randint(1000, 9999)}",
                    "town": MUNICIPALITIES[code],
                    "description": None,
                    "valid_from": None,
                    "valid_to": None,
                    **search_columns(unit_id, name, [], MUNICIPALITIES[code], hsa_id),
                    "source": "generated",
                    "updated_by": None,
                    "deleted_at": None,
                }
            )
            for rank, (purpose, channel, value, hours) in enumerate(
                (
                    ("general", "secure_message", f"brygga:unit:{hsa_id}", (1, 5, time(8), time(16, 30))),
                    (
                        "weekend_discharge",
                        "phone",
                        f"+46 8 {rng.randint(100, 999)} {rng.randint(100, 999)} 00",
                        (6, 7, time(9), time(15)),
                    ),
                ),
                start=1,
            ):
                route_id = uuid.uuid4()
                routes.append(
                    {
                        "id": route_id,
                        "unit_id": unit_id,
                        "purpose": purpose,
                        "channel": channel,
                        "label": "Inkorg" if channel == "secure_message" else "Helgtelefon",
                        "value": value,
                        "audience": "staff",
                        "rank": rank * 10,
                        "note": None,
                        "endpoint_id": None,
                        "valid_from": None,
                        "valid_to": None,
                        "version": 1,
                        "created_at": now,
                        "updated_at": now,
                        "updated_by": None,
                        "deleted_at": None,
                    }
                )
                spans.append(
                    {
                        "id": uuid.uuid4(),
                        "route_id": route_id,
                        "position": 0,
                        "from_day": hours[0],
                        "to_day": hours[1],
                        "all_day": False,
                        "from_time": hours[2],
                        "to_time": hours[3],
                        "from_date": None,
                        "to_date": None,
                        "holiday_rule": "closed_on_holidays",
                        "comment": None,
                    }
                )
        async with ctx.db.transaction() as session:
            await session.execute(insert(table_of(Unit)), units)
            await session.execute(insert(table_of(ContactRoute)), routes)
            await session.execute(insert(table_of(TimeSpan)), spans)
        written += len(units)
        if progress:
            progress(f"generated {written} of {count} units")
    async with ctx.db.transaction() as session:
        await optimize_index(session)
    Vocabulary.invalidate()
    return written
