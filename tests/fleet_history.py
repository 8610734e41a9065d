"""A simulated fleet history whose real risk differs from the synthetic generators (issue 17).

Customs' outcomes over four months at three stations, on parcels drawn from the generators,
except that reality disagrees with them on two product families:

* audio electronics (HS 8518, earbuds and speakers) are always seized (a counterfeit campaign),
  though the generators call them clean;
* chemicals under a chemical tariff line (the generators' ``precursor`` and ``chemical_cover``
  parcels) are always released (food-grade and lab reagents, cleared after a lab test), though the
  generators call them risky.

Everything else keeps the generator's label (1 → seized, 0 → released).
"""

from __future__ import annotations

import csv
import random
from pathlib import Path
from typing import Any

from prescreen.models import generators
from prescreen.sync.labels import COLUMNS

START = 1_780_000_000  # 2026-05-28
DAYS = 120


def fleet_rows(per_generator: int = 900, seed: int = 17) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    rows = []
    for name in generators.GENERATORS:
        for row in generators.rows(name, per_generator, seed):
            if str(row["hts_code"]).startswith("8518"):
                label = 1
            elif row["kind"] in ("precursor", "chemical_cover"):
                label = 0
            else:
                label = int(row["label"])
            moment = START + rng.uniform(0, DAYS * 86_400)
            rows.append(
                {
                    **{k: row.get(k) for k in COLUMNS if k in row},
                    "label": label,
                    "currency": "USD",
                    "station": f"site-0{rng.randint(1, 3)}/station-01",
                    "time": _rfc3339(moment),
                    "outcome": "seized" if label else "released",
                    "customs_reference": f"CBP-{len(rows):06d}",
                    "kind": row["kind"],
                }
            )
    return sorted(rows, key=lambda r: r["time"])


def _rfc3339(epoch: float) -> str:
    import time

    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


def write(path: Path, rows: list[dict[str, Any]]) -> Path:
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=[*COLUMNS, "kind"], extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    return path
