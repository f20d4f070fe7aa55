"""Fleet health on the schedule: one vehicles-table scan, the Parquet snapshot, FleetHealth metrics.

The update manager calls :func:`publish_fleet_health` once per tick.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import pandas as pd

from fleetota_core.adapters.cloudwatch_metrics import put_metrics
from fleetota_core.adapters.fleet_snapshot import (
    SNAPSHOT_COLUMNS,
    read_fleet_snapshot,
    scan_vehicles,
    write_fleet_snapshot,
)
from fleetota_core.domain.enrichment import OFFLINE_AFTER

if TYPE_CHECKING:
    from fleetota_core.adapters.clients import ClientFactory
    from fleetota_core.adapters.resources import Resources

NAMESPACE = "FleetHealth"


@dataclass
class FleetHealth:
    vehicles: int
    online: int
    connectivity_pct: float | None
    battery_average: float | None
    needs_update: int
    versions: dict[str, int] = field(default_factory=dict)
    regions: dict[str, int] = field(default_factory=dict)
    as_of: str = ""
    source: str = "table"

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def fleet_frame(items: list[dict[str, Any]], now: datetime) -> pd.DataFrame:
    """Vehicle items as the snapshot's columns; ``online`` also requires a reading within 5 minutes."""
    frame = pd.DataFrame(items)
    for column in SNAPSHOT_COLUMNS:
        if column not in frame.columns:
            frame[column] = None
    frame = frame[list(SNAPSHOT_COLUMNS)].copy()
    frame["last_ts"] = pd.to_datetime(frame["last_ts"], utc=True, errors="coerce", format="ISO8601")
    fresh = (pd.Timestamp(now) - frame["last_ts"]) <= pd.Timedelta(OFFLINE_AFTER)
    frame["online"] = frame["online"].fillna(False).astype(bool) & fresh.fillna(False)
    for column in ("charging", "needs_update"):
        frame[column] = frame[column].fillna(False).astype(bool)
    for column in ("lat", "lon", "speed_kph", "soc_pct", "signal_dbm", "odometer_km"):
        frame[column] = pd.to_numeric(frame[column], errors="coerce").astype("float64")
    frame["model_year"] = pd.to_numeric(frame["model_year"], errors="coerce").fillna(0).astype("int32")
    return frame.sort_values("vin", ignore_index=True)


def fleet_health(frame: pd.DataFrame, as_of: datetime, source: str = "table") -> FleetHealth:
    vehicles = len(frame)
    online = int(frame["online"].sum()) if vehicles else 0
    soc = frame["soc_pct"].dropna() if vehicles else pd.Series(dtype=float)
    return FleetHealth(
        vehicles=vehicles,
        online=online,
        connectivity_pct=round(100.0 * online / vehicles, 2) if vehicles else None,
        battery_average=round(float(soc.mean()), 2) if len(soc) else None,
        needs_update=int(frame["needs_update"].sum()) if vehicles else 0,
        versions=dict(Counter(frame["firmware_version"].dropna()).most_common()) if vehicles else {},
        regions=dict(Counter(frame["region"].dropna()).most_common()) if vehicles else {},
        as_of=as_of.isoformat(),
        source=source,
    )


def health_datums(health: FleetHealth) -> list[tuple[str, float, str]]:
    datums: list[tuple[str, float, str]] = [
        ("Vehicles", health.vehicles, "Count"),
        ("VehiclesOnline", health.online, "Count"),
    ]
    if health.connectivity_pct is not None:
        datums.append(("ConnectivityPercent", health.connectivity_pct, "Percent"))
    if health.battery_average is not None:
        datums.append(("BatteryAverage", health.battery_average, "Percent"))
    return datums


def publish_fleet_health(
    clients: ClientFactory, resources: Resources, now: datetime | None = None
) -> FleetHealth:
    """Scan the vehicles once, write the fleet snapshot, publish FleetHealth metrics; returns the numbers.

    Publishes ``VehiclesOnline``, ``BatteryAverage``, ``ConnectivityPercent`` (the alarm's metric) and
    ``Vehicles``, dimensionless. An empty fleet publishes no percentages (the alarm treats it as missing).
    """
    now = now or datetime.now(UTC)
    frame = fleet_frame(scan_vehicles(clients.dynamodb, resources.vehicles_table), now)
    write_fleet_snapshot(clients.s3, resources.telemetry_bucket, frame, now)
    health = fleet_health(frame, now)
    put_metrics(clients.cloudwatch, NAMESPACE, health_datums(health), now)
    return health


def current_fleet_health(clients: ClientFactory, resources: Resources, live: bool = False) -> FleetHealth:
    """The fleet summary for operators: from the snapshot when there is one, else a live scan."""
    now = datetime.now(UTC)
    snapshot = None if live else read_fleet_snapshot(clients, resources)
    if snapshot is not None:
        as_of = datetime.fromisoformat(snapshot.attrs["as_of"]) if snapshot.attrs.get("as_of") else now
        return fleet_health(snapshot, as_of, source="snapshot")
    return fleet_health(fleet_frame(scan_vehicles(clients.dynamodb, resources.vehicles_table), now), now)
