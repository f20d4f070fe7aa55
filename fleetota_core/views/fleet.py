"""The fleet as one table: every vehicle's latest state, for the overview, the map and the vehicle list."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pandas as pd

from fleetota_core.adapters.table_reader import scan_table
from fleetota_core.adapters.vehicle_registry import VehicleRegistry
from fleetota_core.domain.vehicle import BatteryCategory
from fleetota_core.local.simulator_process import read_fleet_file
from fleetota_core.views.fleet_snapshot import read_snapshot_frame

if TYPE_CHECKING:
    from pathlib import Path

    from fleetota_core.adapters.clients import ClientFactory
    from fleetota_core.adapters.resources import Resources

# The columns every fleet-wide page relies on, with the value a missing column gets.
FLEET_COLUMNS: dict[str, Any] = {
    "vin": "",
    "make": "",
    "model": "",
    "model_year": 0,
    "hw_rev": "",
    "firmware_version": "",
    "region": "unknown",
    "metro": "",
    "last_ts": pd.NaT,
    "lat": float("nan"),
    "lon": float("nan"),
    "speed_kph": 0.0,
    "soc_pct": float("nan"),
    "charging": False,
    "drive_state": "",
    "network": "NONE",
    "signal_dbm": float("nan"),
    "odometer_km": 0.0,
    "online": False,
}
STATUSES = ("driving", "charging", "parked", "offline")
# A provisioned vehicle with no telemetry at all: in the fleet, never online, nowhere on the map.
NEVER_REPORTED = "never reported"
# The vehicles page reads at most this many registry entries per refresh (a bounded scan, cached).
REGISTRY_READ_LIMIT = 20_000
# The same bands as fleetota_core.domain.vehicle.battery_category, checked by a unit test.
_BATTERY_BINS = [float("-inf"), 10, 30, 80, float("inf")]
_BATTERY_LABELS = [
    c.value for c in (BatteryCategory.CRITICAL, BatteryCategory.LOW, BatteryCategory.OK, BatteryCategory.HIGH)
]


def normalize_fleet(raw: pd.DataFrame) -> pd.DataFrame:
    """The fleet with exactly :data:`FLEET_COLUMNS` plus derived ``status`` and ``battery``."""
    df = raw.copy()
    for column, default in FLEET_COLUMNS.items():
        if column not in df.columns:
            df[column] = default
    df = df[list(FLEET_COLUMNS)]
    for column in ("lat", "lon", "speed_kph", "soc_pct", "signal_dbm", "odometer_km"):
        df[column] = pd.to_numeric(df[column], errors="coerce")
    df["last_ts"] = pd.to_datetime(df["last_ts"], utc=True, errors="coerce")
    df["online"] = df["online"].fillna(False).astype(bool)
    df["drive_state"] = df["drive_state"].fillna("").astype(str)
    for column in ("vin", "make", "model", "hw_rev", "firmware_version", "region", "metro", "network"):
        df[column] = df[column].fillna(FLEET_COLUMNS[column]).astype(str)
    # An offline vehicle's last drive state is stale, so the map shows it as offline.
    df["status"] = df["drive_state"].where(df["online"] & df["drive_state"].isin(STATUSES), "offline")
    df["battery"] = battery_categories(df["soc_pct"])
    return df.sort_values("vin", ignore_index=True)


def battery_categories(soc: pd.Series) -> pd.Series:
    """:func:`battery_category` for a whole column at once (a per-row call costs ~0.3 s at 100,000)."""
    bands = pd.cut(soc, bins=_BATTERY_BINS, labels=_BATTERY_LABELS, right=False)
    return bands.astype(object).where(soc.notna(), "unknown")


def fleet_frame(
    clients: ClientFactory, resources: Resources, scan_fallback_limit: int = 20_000
) -> pd.DataFrame:
    """Every vehicle's latest state, from the fleet snapshot in S3, else from the vehicles table.

    The snapshot is the cheap read model written on the schedule; the table scan is a fallback for a
    young stack that has not written one (or has written an empty one) yet, capped so it cannot run
    for minutes.
    """
    snapshot = read_snapshot_frame(clients, resources)
    if snapshot is not None and len(snapshot):
        return normalize_fleet(snapshot)
    items = scan_table(clients.dynamodb, resources.vehicles_table, limit=scan_fallback_limit)
    return normalize_fleet(pd.DataFrame(items))


def with_provisioned(fleet: pd.DataFrame, provisioned: list[dict[str, Any]] | None) -> pd.DataFrame:
    """The fleet plus every provisioned vehicle that never reported, with status :data:`NEVER_REPORTED`.

    ``provisioned`` is the vehicle registry's entries (and the simulator's fleet definition, for a
    fleet file written before the registry knew it); a vehicle that reported without being in it (an
    earlier run's) stays in the fleet too.
    """
    if not provisioned:
        return fleet
    reported = set(fleet["vin"])
    silent = [v for v in provisioned if v.get("vin") and v["vin"] not in reported]
    if not silent:
        return fleet
    extra = normalize_fleet(pd.DataFrame(silent))
    extra["status"] = NEVER_REPORTED
    frames = [f for f in (fleet, extra) if len(f)]
    return pd.concat(frames, ignore_index=True).sort_values("vin", ignore_index=True)


def provisioned_vehicles(
    clients: ClientFactory, resources: Resources, state_dir: Path, limit: int = REGISTRY_READ_LIMIT
) -> list[dict[str, Any]]:
    """Every provisioned vehicle's identity: the registry's, then the simulator's fleet file's others."""
    registered = [
        {
            "vin": v.vin,
            "make": v.make,
            "model": v.model,
            "model_year": v.model_year,
            "hw_rev": v.hw_rev,
            "region": v.region,
        }
        for v in VehicleRegistry(clients.dynamodb, resources.registry_table).all(limit=limit)
    ]
    known = {v["vin"] for v in registered}
    return registered + [v for v in read_fleet_file(state_dir) or [] if v["vin"] not in known]


def provisioned_digest(vehicles: list[dict[str, Any]]) -> str:
    """A short fingerprint of the provisioned fleet: a new or removed vehicle changes it."""
    vins = "\n".join(sorted(str(v.get("vin")) for v in vehicles))
    return hashlib.blake2b(vins.encode(), digest_size=8).hexdigest()


@dataclass(frozen=True)
class FleetChoices:
    """What the fleet pages' filters offer: each model, region and firmware version in the fleet."""

    models: list[str]
    regions: list[str]
    versions: list[str]  # semantic order


def fleet_choices(fleet: pd.DataFrame) -> FleetChoices:
    return FleetChoices(
        models=sorted(fleet["model"].unique()),
        regions=sorted(fleet["region"].unique()),
        versions=sorted(fleet["firmware_version"].unique(), key=version_key),
    )


def never_reported(fleet: pd.DataFrame) -> pd.DataFrame:
    """The provisioned vehicles of a fleet frame that have not sent a single record yet."""
    if fleet.empty or "status" not in fleet:
        return fleet.head(0)
    return fleet[fleet["status"] == NEVER_REPORTED]


@dataclass(frozen=True)
class FleetKpis:
    vehicles: int  # the whole fleet: reported or provisioned
    online: int
    online_pct: float  # of the whole fleet, never-reported vehicles included
    battery_avg: float | None
    needs_attention: int
    never_reported: int = 0

    @property
    def reported(self) -> int:
        return self.vehicles - self.never_reported


def fleet_kpis(fleet: pd.DataFrame) -> FleetKpis:
    """Headline numbers of a normalized fleet frame (with its never-reported rows, if any)."""
    total = len(fleet)
    online = int(fleet["online"].sum()) if total else 0
    soc = fleet["soc_pct"].dropna() if total else pd.Series(dtype=float)
    attention = int((fleet["battery"] == "critical").sum()) if total else 0
    silent = int((fleet["status"] == NEVER_REPORTED).sum()) if total and "status" in fleet else 0
    return FleetKpis(
        vehicles=total,
        online=online,
        online_pct=100.0 * online / total if total else 0.0,
        battery_avg=float(soc.mean()) if len(soc) else None,
        needs_attention=attention,
        never_reported=silent,
    )


def fleet_mask(
    fleet: pd.DataFrame,
    models: list[str] | None = None,
    regions: list[str] | None = None,
    versions: list[str] | None = None,
    text: str = "",
) -> pd.Series | None:
    """Which vehicles match every given filter; None when no filter is given (all match)."""
    mask = None
    if models:
        mask = fleet["model"].isin(models)
    if regions:
        mask = fleet["region"].isin(regions) if mask is None else mask & fleet["region"].isin(regions)
    if versions:
        matched = fleet["firmware_version"].isin(versions)
        mask = matched if mask is None else mask & matched
    if text and text.strip():
        needle = text.strip().upper()
        matched = fleet["vin"].str.contains(needle, regex=False) | fleet["model"].str.upper().str.contains(
            needle, regex=False
        )
        mask = matched if mask is None else mask & matched
    return mask


def filter_fleet(
    fleet: pd.DataFrame,
    models: list[str] | None = None,
    regions: list[str] | None = None,
    versions: list[str] | None = None,
    text: str = "",
) -> pd.DataFrame:
    """Vehicles matching every given filter; an empty filter matches all (the same frame, no copy)."""
    mask = fleet_mask(fleet, models, regions, versions, text)
    return fleet if mask is None else fleet[mask]


def version_key(version: str) -> tuple:
    """Sort key for semantic versions; unparseable ones sort last."""
    core = version.split("-", 1)[0].split(".")
    try:
        return (0, *(int(p) for p in core))
    except ValueError:
        return (1, version)
