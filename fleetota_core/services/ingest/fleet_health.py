"""Fleet health on the schedule: one vehicles-table scan, the Parquet snapshot, FleetHealth metrics.

The update manager calls :func:`publish_fleet_health` once per tick.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pandas as pd

from fleetota_core.adapters.cloudwatch_metrics import MetricsWriter
from fleetota_core.adapters.fleet_snapshot import (
    SNAPSHOT_COLUMNS,
    delete_deltas_before,
    list_deltas,
    read_fleet_snapshot,
    read_parquet,
    scan_vehicles,
    time_bound_key,
    write_delta,
    write_fleet_snapshot,
)
from fleetota_core.adapters.vehicle_state import state_attributes
from fleetota_core.domain.enrichment import OFFLINE_AFTER

if TYPE_CHECKING:
    from fleetota_core.adapters.clients import ClientFactory
    from fleetota_core.adapters.resources import Resources
    from fleetota_core.domain.enrichment import VehicleState

NAMESPACE = "FleetHealth"
# A full vehicles-table scan heals anything a lost delta missed; in between, deltas are merged.
FULL_REBUILD = timedelta(minutes=30)
# Deltas younger than this may still be on their way to S3; they are merged on the next tick.
DELTA_SETTLE = timedelta(seconds=30)
DELTA_RETENTION = timedelta(hours=1)


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


def fleet_frame(items: list[dict[str, Any]] | pd.DataFrame, now: datetime) -> pd.DataFrame:
    """Vehicles as the snapshot's columns, newest state per VIN; ``online`` means a network was
    reported and the reading is at most 5 minutes old at ``now``."""
    frame = items.copy() if isinstance(items, pd.DataFrame) else pd.DataFrame(items)
    for column in SNAPSHOT_COLUMNS:
        if column not in frame.columns:
            frame[column] = None
    frame = frame[list(SNAPSHOT_COLUMNS)].copy()
    # Milliseconds, as the snapshot stores them: a reading timed to the microsecond must not fail it.
    frame["last_ts"] = pd.to_datetime(frame["last_ts"], utc=True, errors="coerce", format="ISO8601").dt.floor(
        "ms"
    )
    derived_ms = frame["last_ts"].astype("int64") // 1_000_000
    frame["last_ts_ms"] = (
        pd.to_numeric(frame["last_ts_ms"], errors="coerce").fillna(derived_ms).astype("int64")
    )
    frame["last_seq"] = pd.to_numeric(frame["last_seq"], errors="coerce").fillna(-1).astype("int64")
    frame = frame.sort_values(["vin", "last_ts_ms", "last_seq"]).drop_duplicates("vin", keep="last")
    fresh = (pd.Timestamp(now) - frame["last_ts"]) <= pd.Timedelta(OFFLINE_AFTER)
    frame["online"] = frame["network"].fillna("NONE").ne("NONE") & fresh.fillna(False)
    for column in ("charging", "needs_update"):
        frame[column] = frame[column].fillna(False).astype(bool)
    for column in ("lat", "lon", "speed_kph", "soc_pct", "signal_dbm", "odometer_km"):
        frame[column] = pd.to_numeric(frame[column], errors="coerce").astype("float64")
    frame["model_year"] = pd.to_numeric(frame["model_year"], errors="coerce").fillna(0).astype("int32")
    return frame.reset_index(drop=True)


def states_frame(states: list[VehicleState], now: datetime) -> pd.DataFrame:
    """Vehicle states as snapshot rows (what the processor writes as a delta)."""
    rows = [{"vin": s.vin, **state_attributes(s, now)} for s in states]
    return fleet_frame(rows, now)


def write_snapshot_delta(
    clients: ClientFactory, resources: Resources, states: list[VehicleState]
) -> str | None:
    """Hand the states one processor invocation wrote to the next snapshot; None if there were none."""
    if not states:
        return None
    now = datetime.now(UTC)
    return write_delta(clients.s3, resources.telemetry_bucket, states_frame(states, now), now)


def _merged_snapshot(
    clients: ClientFactory, resources: Resources, now: datetime
) -> tuple[pd.DataFrame, str, datetime]:
    """(fleet, high water, rebuilt at): the last snapshot plus newer deltas, or a full scan when due."""
    s3, bucket = clients.s3, resources.telemetry_bucket
    settled = time_bound_key(now - DELTA_SETTLE)
    previous = read_fleet_snapshot(clients, resources)
    rebuilt = previous.attrs.get("rebuilt_at") if previous is not None else ""
    rebuilt_at = datetime.fromisoformat(rebuilt) if rebuilt else None
    if previous is None or rebuilt_at is None or now - rebuilt_at >= FULL_REBUILD:
        # Every delta settled before the scan is in the table, so the scan covers it.
        return fleet_frame(scan_vehicles(clients.dynamodb, resources.vehicles_table), now), settled, now
    high_water = previous.attrs.get("high_water") or settled
    keys = list_deltas(s3, bucket, after=high_water, before=settled)
    deltas = [found[0] for key in keys if (found := read_parquet(s3, bucket, key)) is not None]
    merged = pd.concat([previous, *deltas], ignore_index=True) if deltas else previous
    return fleet_frame(merged, now), (keys[-1] if keys else high_water), rebuilt_at


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
    """Refresh the fleet snapshot and publish FleetHealth metrics; returns the numbers. Once per tick.

    The snapshot is the previous one plus the processor's deltas since, so a tick costs a few S3
    requests instead of a table scan; a full scan runs first and every 30 minutes. Publishes
    ``VehiclesOnline``, ``BatteryAverage``, ``ConnectivityPercent`` (the alarm's metric) and
    ``Vehicles``, dimensionless. An empty fleet publishes no percentages (the alarm treats it as missing).
    """
    now = now or datetime.now(UTC)
    frame, high_water, rebuilt_at = _merged_snapshot(clients, resources, now)
    write_fleet_snapshot(clients.s3, resources.telemetry_bucket, frame, now, high_water, rebuilt_at)
    delete_deltas_before(clients.s3, resources.telemetry_bucket, time_bound_key(now - DELTA_RETENTION))
    health = fleet_health(frame, now)
    MetricsWriter(clients.cloudwatch, NAMESPACE).publish(health_datums(health), now)
    return health


def current_fleet_health(clients: ClientFactory, resources: Resources, live: bool = False) -> FleetHealth:
    """The fleet summary for operators: from the snapshot when there is one, else a live scan."""
    now = datetime.now(UTC)
    snapshot = None if live else read_fleet_snapshot(clients, resources)
    if snapshot is not None:
        as_of = datetime.fromisoformat(snapshot.attrs["as_of"]) if snapshot.attrs.get("as_of") else now
        return fleet_health(snapshot, as_of, source="snapshot")
    return fleet_health(fleet_frame(scan_vehicles(clients.dynamodb, resources.vehicles_table), now), now)
