"""Monthly discharge statistics per municipality and per Stockholm district, with small-cell suppression.

No personal data: the figures are counts and sums per (month, municipality[, district]). A case counts
in the month (Stockholm time) of its discharge. Suppression (threshold k, `statistics_min_cell`):
* a row with fewer than k cases shows no figures at all;
* the readmission figures of a row show only when both the 65+ discharges and the readmissions are 0 or ≥ k;
* a second district row of the same month is suppressed when exactly one is, so that the hidden one
  cannot be derived from Stockholm's total (complementary suppression).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

STOCKHOLM_CITY = "0180"
DISTRICTS = (
    "Bromma",
    "Enskede-Årsta-Vantör",
    "Farsta",
    "Hägersten-Älvsjö",
    "Hässelby-Vällingby",
    "Kungsholmen",
    "Norrmalm",
    "Rinkeby-Kista",
    "Skarpnäck",
    "Skärholmen",
    "Spånga-Tensta",
    "Södermalm",
    "Östermalm",
)


@dataclass
class Cell:
    month: str
    municipality_code: str
    district: str | None  # None: the whole municipality
    cases: int | None
    ready_days: int | None
    payment_days: int | None
    discharges_65_plus: int | None
    readmissions_65_plus: int | None
    readmission_share: float | None  # readmissions / discharges among 65+
    suppressed: bool


Key = tuple[str, str, str | None]
Figures = list[int]  # cases, ready days, payment days, discharges 65+, readmissions 65+


def aggregate(rows: Iterable[tuple[Any, ...]]) -> dict[Key, Figures]:
    """Rows of (month, municipality, district, *figures) -> totals per municipality and per district."""
    cells: dict[Key, Figures] = {}
    for month, municipality, district, *figures in rows:
        keys: list[Key] = [(month, municipality, None)]
        if municipality == STOCKHOLM_CITY and district:
            keys.append((month, municipality, district))
        for key in keys:
            total = cells.setdefault(key, [0, 0, 0, 0, 0])
            for index, value in enumerate(figures):
                total[index] += int(value or 0)
    return cells


def _hidden(figures: Figures, k: int) -> bool:
    return figures[0] < k


def suppress(cells: dict[Key, Figures], k: int) -> list[Cell]:
    hidden = {key for key, figures in cells.items() if _hidden(figures, k)}
    by_month: dict[str, list[Key]] = {}
    for key in cells:
        if key[2] is not None:
            by_month.setdefault(key[0], []).append(key)
    for districts in by_month.values():
        suppressed = [key for key in districts if key in hidden]
        if len(suppressed) == 1:
            visible = sorted((key for key in districts if key not in hidden), key=lambda key: cells[key][0])
            if visible:
                hidden.add(visible[0])
    out: list[Cell] = []
    for key in sorted(cells, key=lambda key: (key[0], key[1], key[2] or "")):
        month, municipality, district = key
        cases, ready, payment, older, readmitted = cells[key]
        if key in hidden:
            out.append(Cell(month, municipality, district, None, None, None, None, None, None, True))
            continue
        show_readmissions = all(value == 0 or value >= k for value in (older, readmitted))
        out.append(
            Cell(
                month,
                municipality,
                district,
                cases,
                ready,
                payment,
                older if show_readmissions else None,
                readmitted if show_readmissions else None,
                round(readmitted / older, 4) if show_readmissions and older else None,
                not show_readmissions,
            )
        )
    return out


CSV_COLUMNS = (
    "month",
    "municipality_code",
    "municipality",
    "district",
    "cases",
    "ready_days",
    "payment_days",
    "discharges_65_plus",
    "readmissions_65_plus",
    "readmission_share",
    "suppressed",
)


def to_csv(cells: list[Cell], names: dict[str, str]) -> str:
    """Semicolon-separated, UTF-8: opens as columns in Swedish spreadsheet programs."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=";", lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for cell in cells:
        row = asdict(cell)
        row["municipality"] = names.get(cell.municipality_code, "")
        writer.writerow(["" if row[column] is None else row[column] for column in CSV_COLUMNS])
    return buffer.getvalue()
