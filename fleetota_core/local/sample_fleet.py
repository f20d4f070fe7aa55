"""A synthetic but valid fleet (real WMIs, valid check digits, metro positions) for benchmarks and tests.

Deterministic for a seed, vectorised with numpy so 100,000 vehicles take well under a second.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd

from fleetota_core.adapters.fleet_snapshot import ROW_COLUMNS
from fleetota_core.domain.geography import METROS
from fleetota_core.domain.vehicle import battery_category
from fleetota_core.domain.vehicle_health import ATTRIBUTES as HEALTH_ATTRIBUTES
from fleetota_core.domain.vin import WMI_BY_MAKE, check_digit, year_code

MODELS = (
    ("Tesla", "Tesla Model 3", "HW4"),
    ("Tesla", "Tesla Model Y", "HW4"),
    ("Ford", "Ford Mustang Mach-E", "TCU3"),
    ("Volkswagen", "Volkswagen ID.4", "TCU3"),
    ("Hyundai", "Hyundai Ioniq 5", "TCU3"),
    ("BMW", "BMW i4", "TCU2"),
)
VERSIONS = ("1.0.0", "1.1.0", "1.2.0", "2.0.0")
_VIN_ALPHABET = np.array(list("ABCDEFGHJKLMNPRSTUVWXYZ0123456789"))


def sample_vin(make: str, model_year: int, serial: int, body: str) -> str:
    """A valid VIN: the make's real WMI, ``body`` as VDS, check digit, year code, plant, serial."""
    draft = f"{WMI_BY_MAKE[make][0]}{body}0{year_code(model_year)}A{serial:06d}"
    return draft[:8] + check_digit(draft) + draft[9:]


def sample_fleet(n: int, seed: int = 7, now: datetime | None = None) -> pd.DataFrame:
    """A fleet frame with the columns :data:`fleetota_core.views.fleet.FLEET_COLUMNS` expects."""
    rng = np.random.default_rng(seed)
    now = now or datetime.now(UTC)
    model_idx = rng.integers(0, len(MODELS), size=n)
    years = rng.integers(2019, 2027, size=n)
    bodies = ["".join(b) for b in rng.choice(_VIN_ALPHABET, size=(n, 5))]
    # The serial is the row number, so VINs are distinct without a retry loop.
    vins = [
        sample_vin(MODELS[m][0], int(y), i, b)
        for i, (m, y, b) in enumerate(zip(model_idx, years, bodies, strict=True))
    ]
    metro_idx = rng.integers(0, len(METROS), size=n)
    south = np.array([m.bbox[0] for m in METROS])[metro_idx]
    west = np.array([m.bbox[1] for m in METROS])[metro_idx]
    north = np.array([m.bbox[2] for m in METROS])[metro_idx]
    east = np.array([m.bbox[3] for m in METROS])[metro_idx]
    online = rng.random(n) < 0.9
    state = rng.choice(["driving", "parked", "charging"], size=n, p=[0.35, 0.5, 0.15])
    return pd.DataFrame(
        {
            "vin": vins,
            "make": [MODELS[i][0] for i in model_idx],
            "model": [MODELS[i][1] for i in model_idx],
            "model_year": years,
            "hw_rev": [MODELS[i][2] for i in model_idx],
            "firmware_version": rng.choice(VERSIONS, size=n, p=[0.1, 0.3, 0.5, 0.1]),
            "region": [METROS[i].region for i in metro_idx],
            "metro": [METROS[i].name for i in metro_idx],
            "last_ts": [now - timedelta(seconds=int(s)) for s in rng.integers(0, 600, size=n)],
            "lat": south + rng.random(n) * (north - south),
            "lon": west + rng.random(n) * (east - west),
            "speed_kph": np.where(state == "driving", rng.uniform(5, 120, n), 0.0).round(1),
            "soc_pct": rng.uniform(3, 100, n).round(1),
            "charging": state == "charging",
            "drive_state": state,
            "network": np.where(online, rng.choice(["LTE", "5G", "WIFI"], size=n), "NONE"),
            "signal_dbm": np.where(online, rng.integers(-115, -60, size=n), np.nan),
            "odometer_km": rng.uniform(100, 150_000, n).round(1),
            "online": online,
        }
    )


def sample_snapshot_rows(n: int, seed: int | None = None, now: datetime | None = None) -> dict[str, dict]:
    """:func:`sample_fleet` as fleet snapshot rows keyed by VIN, as the update manager writes them.

    Column by column (the same rows as ``merge_rows`` over the fleet's records, checked by a unit
    test), so a 1,000,000-vehicle snapshot for the dashboard benchmark takes seconds, not minutes.
    """
    fleet = sample_fleet(n, seed=n if seed is None else seed, now=now)
    last_ts = pd.to_datetime(fleet["last_ts"], utc=True).dt.floor("ms")
    columns: dict[str, list] = {
        "battery_category": [battery_category(s).value for s in fleet["soc_pct"]],
        "needs_update": (fleet["firmware_version"] != "2.0.0").tolist(),
        "newest_compatible": ["2.0.0"] * n,
        "ota_status": [None] * n,
        "last_ts": last_ts.dt.strftime("%Y-%m-%dT%H:%M:%S.%fZ").tolist(),
        "last_ts_ms": ((last_ts - pd.Timestamp(0, tz=UTC)) // pd.Timedelta(milliseconds=1)).tolist(),
        "last_seq": [1] * n,
        "model_year": fleet["model_year"].astype(int).tolist(),
        "charging": fleet["charging"].astype(bool).tolist(),
        "online": fleet["online"].astype(bool).tolist(),
    }
    for column in ("lat", "lon", "speed_kph", "soc_pct", "signal_dbm", "odometer_km"):
        values = fleet[column].astype(float)
        columns[column] = values.astype(object).where(values.notna(), None).tolist()
    for column in HEALTH_ATTRIBUTES:
        columns[column] = [None] * n  # a synthetic fleet reports no health counters
    for column in (
        "make",
        "model",
        "hw_rev",
        "firmware_version",
        "region",
        "metro",
        "drive_state",
        "network",
    ):
        columns[column] = fleet[column].astype(str).tolist()
    names = list(ROW_COLUMNS)
    return dict(
        zip(
            fleet["vin"],
            (
                dict(zip(names, values, strict=True))
                for values in zip(*(columns[c] for c in names), strict=True)
            ),
            strict=True,
        )
    )
