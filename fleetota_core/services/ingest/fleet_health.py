"""Fleet health on the schedule: the fleet snapshot (merged or rebuilt) and the FleetHealth metrics.

The update manager calls :func:`publish_fleet_health` once per tick. Everything here works on plain
Python structures (rows keyed by VIN), so the Lambda packages need no pandas (issue #16).
"""

from __future__ import annotations

import logging
import math
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from fleetota_core.adapters.cloudwatch_metrics import MetricsWriter
from fleetota_core.adapters.fleet_shard_merge import ShardMerge
from fleetota_core.adapters.fleet_shard_rows import ShardedRows
from fleetota_core.adapters.fleet_shards import SnapshotIndex, delete_keys, shards_for, write_index
from fleetota_core.adapters.fleet_snapshot import (
    DELTA_PREFIX,
    ROW_COLUMNS,
    SNAPSHOT_COLUMNS,
    SnapshotFormatError,
    delete_deltas_before,
    list_deltas,
    read_document,
    scan_vehicles,
    time_bound_key,
    write_delta,
)
from fleetota_core.adapters.fleet_snapshot_reads import read_snapshot_index
from fleetota_core.adapters.vehicle_segments import VehicleTableSegments
from fleetota_core.adapters.vehicle_state import iso_utc, state_attributes
from fleetota_core.domain.enrichment import OFFLINE_AFTER
from fleetota_core.domain.fleet_sweep import SWEEP_EVERY, SweepCursor, sweep_to_work_on
from fleetota_core.domain.vehicle_health import ATTRIBUTES as HEALTH_ATTRIBUTES
from fleetota_core.services.fleet.sweep import sweep_step
from fleetota_core.services.ingest.snapshot_parts import (
    merge_in_parts,
    parts_for,
    process_runner,
    snapshot_workers,
)

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator, Mapping

    from fleetota_core.adapters.clients import ClientFactory
    from fleetota_core.adapters.fleet_line_facts import Facts
    from fleetota_core.adapters.fleet_snapshot import Row
    from fleetota_core.adapters.resources import Resources
    from fleetota_core.domain.enrichment import VehicleState
    from fleetota_core.services.ingest.snapshot_parts import PartRunner

logger = logging.getLogger(__name__)

NAMESPACE = "FleetHealth"
# A sweep of the vehicles table (in segments, over a few ticks) heals what a lost delta missed.
FULL_REBUILD = SWEEP_EVERY
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


_FLOATS = ("lat", "lon", "speed_kph", "soc_pct", "signal_dbm", "odometer_km", *HEALTH_ATTRIBUTES)
_FLAGS = ("charging", "needs_update")


def _number(value: Any, kind: type[int] | type[float]) -> int | float | None:
    """``value`` as ``kind``, or None when it is missing, not a number or not finite."""
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return kind(number) if math.isfinite(number) else None


def _timestamp(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, str) and value:
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return None


def snapshot_row(item: dict[str, Any]) -> Row:
    """One vehicle's values with the snapshot's types: numbers or None, flags, UTC ``last_ts``."""
    row = {column: item.get(column) for column in ROW_COLUMNS}
    ts = _timestamp(row["last_ts"])
    row["last_ts"] = iso_utc(ts) if ts else None
    ts_ms = _number(row["last_ts_ms"], int)
    row["last_ts_ms"] = ts_ms if ts_ms is not None else (int(ts.timestamp() * 1000) if ts else 0)
    seq = _number(row["last_seq"], int)
    row["last_seq"] = seq if seq is not None else -1
    row["model_year"] = _number(row["model_year"], int) or 0
    for column in _FLOATS:
        row[column] = _number(row[column], float)
    for column in _FLAGS:
        row[column] = bool(row[column])
    return row


def refresh_online(rows: dict[str, Row], now: datetime) -> None:
    """``online``: a network was reported and the reading is at most 5 minutes old at ``now``."""
    fresh_after = (now - OFFLINE_AFTER).timestamp() * 1000
    for row in rows.values():
        row["online"] = row["network"] not in (None, "NONE") and row["last_ts_ms"] >= fresh_after


def merge_rows(rows: dict[str, Row], items: Iterable[dict[str, Any]]) -> dict[str, Row]:
    """Add ``items`` (each with a ``vin``) to ``rows`` in place; per VIN the newest (ts, seq) wins."""
    for item in items:
        vin = item.get("vin")
        if not vin:
            continue
        row = snapshot_row(item)
        if _newer(row, rows.get(vin)):
            rows[vin] = row
    return rows


def fleet_rows(items: Iterable[dict[str, Any]], now: datetime) -> dict[str, Row]:
    """Vehicles as snapshot rows keyed by VIN, newest state per VIN, ``online`` as of ``now``."""
    rows = merge_rows({}, items)
    refresh_online(rows, now)
    return rows


def states_rows(states: list[VehicleState], now: datetime) -> dict[str, Row]:
    """Vehicle states as snapshot rows (what the processor writes as a delta)."""
    return fleet_rows(({"vin": s.vin, **state_attributes(s, now)} for s in states), now)


def write_snapshot_delta(
    clients: ClientFactory, resources: Resources, states: list[VehicleState]
) -> str | None:
    """Hand the states one processor invocation wrote to the next snapshot; None if there were none."""
    if not states:
        return None
    now = datetime.now(UTC)
    return write_delta(clients.s3, resources.telemetry_bucket, states_rows(states, now), now)


def _newer(row: Row, current: Row | None) -> bool:
    return current is None or (row["last_ts_ms"], row["last_seq"]) >= (
        current["last_ts_ms"],
        current["last_seq"],
    )


def merge_delta_rows(rows: dict[str, Row], delta: dict[str, Row]) -> None:
    """Fold one delta's rows into ``rows`` in place; per VIN the newest (ts, seq) wins.

    A delta's rows were normalised by the processor that wrote them (``states_rows``), so they are
    taken as they are; only a row without integer ``last_ts_ms`` and ``last_seq`` (never written by
    this version) goes through :func:`snapshot_row`. Each delta holds about one row per vehicle seen
    by one invocation, so this runs ~10,000 times per tick at 10,000 vehicles.
    """
    for vin, row in delta.items():
        ts, seq = row.get("last_ts_ms"), row.get("last_seq")
        if type(ts) is not int or type(seq) is not int:
            row = snapshot_row(row)
        if _newer(row, rows.get(vin)):
            rows[vin] = row


def _merge_deltas(
    clients: ClientFactory, resources: Resources, rows: dict[str, Row], keys: list[str]
) -> None:
    for key in keys:
        try:
            delta = read_document(clients.s3, resources.telemetry_bucket, key)
            merge_delta_rows(rows, delta.rows() if delta is not None else {})
        except SnapshotFormatError as exc:
            # Its vehicles come back with the next full rebuild, as for a delta that was never written.
            logger.warning("%s; skipped", exc)


def _previous_index(clients: ClientFactory, resources: Resources) -> SnapshotIndex | None:
    """The last snapshot's index, or None if there is none this version can use (then: rebuild)."""
    try:
        previous = read_snapshot_index(clients.s3, resources.telemetry_bucket)
    except SnapshotFormatError as exc:
        logger.warning("%s; rebuilding it from the vehicles table", exc)
        return None
    # Columns other than this version's (added or dropped by a change of code) also mean a rebuild.
    if previous is None or previous.columns != list(SNAPSHOT_COLUMNS):
        return None
    return previous


class FleetTally:
    """Fleet health counted from each vehicle's winning line, one shard after another.

    A merge in parts (``snapshot_parts.py``) counts a tally per worker; :meth:`state` and
    :meth:`absorb` add them up. The battery average is an exactly rounded sum (``math.fsum``) of each
    shard's exactly rounded sum, so it does not depend on which worker counted which shard.
    """

    def __init__(self, now: datetime) -> None:
        self.fresh_after = (now - OFFLINE_AFTER).timestamp() * 1000
        self.vehicles = self.online = self.needs_update = self.soc_count = 0
        self.soc_sums: list[float] = []
        self.versions: Counter[str] = Counter()
        self.regions: Counter[str] = Counter()

    def __call__(self, shard: list[Facts]) -> None:
        fresh_after = self.fresh_after
        self.vehicles += len(shard)
        self.online += sum(
            1 for f in shard if f.last_ts_ms >= fresh_after and f.network not in (None, "NONE")
        )
        soc = [f.soc_pct for f in shard if f.soc_pct is not None and math.isfinite(f.soc_pct)]
        self.soc_sums.append(math.fsum(soc))
        self.soc_count += len(soc)
        self.needs_update += sum(1 for f in shard if f.needs_update)
        self.versions.update(f.firmware_version for f in shard if f.firmware_version is not None)
        self.regions.update(f.region for f in shard if f.region is not None)

    def state(self) -> dict[str, Any]:
        """What :meth:`absorb` adds to another tally (plain JSON values)."""
        return {
            "vehicles": self.vehicles,
            "online": self.online,
            "needs_update": self.needs_update,
            "soc_count": self.soc_count,
            "soc_sums": self.soc_sums,
            "versions": dict(self.versions),
            "regions": dict(self.regions),
        }

    def absorb(self, state: Mapping[str, Any]) -> None:
        self.vehicles += state["vehicles"]
        self.online += state["online"]
        self.needs_update += state["needs_update"]
        self.soc_count += state["soc_count"]
        self.soc_sums.extend(state["soc_sums"])
        self.versions.update(state["versions"])
        self.regions.update(state["regions"])

    def health(self, as_of: datetime) -> FleetHealth:
        vehicles = self.vehicles
        return FleetHealth(
            vehicles=vehicles,
            online=self.online,
            connectivity_pct=round(100.0 * self.online / vehicles, 2) if vehicles else None,
            battery_average=round(math.fsum(self.soc_sums) / self.soc_count, 2) if self.soc_count else None,
            needs_update=self.needs_update,
            versions=dict(self.versions.most_common()),
            regions=dict(self.regions.most_common()),
            as_of=as_of.isoformat(),
            source="table",
        )


@dataclass
class MergedSnapshot:
    index: SnapshotIndex
    health: FleetHealth
    retired: list[str]


def _merged_snapshot(
    clients: ClientFactory, resources: Resources, now: datetime, run_parts: PartRunner | None = None
) -> MergedSnapshot:
    """The last snapshot plus the deltas since, and this tick's share of the healing sweep, merged and
    written shard by shard (``adapters/fleet_shard_merge.py``), in parts by worker processes when the
    update manager has the vCPUs for them (``snapshot_parts.py``); the index is not yet written.

    No tick reads the whole vehicles table: the sweep reads a bounded part of it, segment by segment
    (``services/fleet/sweep.py``), and saves its cursor in the index. The table holds only material
    changes, so the sweep's items replace a row only when newer (last seen never moves back).
    """
    s3, bucket = clients.s3, resources.telemetry_bucket
    settled = time_bound_key(now - DELTA_SETTLE)
    header = _previous_index(clients, resources)
    rebuilt_at = datetime.fromisoformat(header.rebuilt_at) if header and header.rebuilt_at else None
    high_water = (header.high_water if header else "") or (settled if header else DELTA_PREFIX)
    keys = list_deltas(s3, bucket, after=high_water, before=settled)
    tally = FleetTally(now)
    shards = shards_for(header.vehicles if header else 0)
    parts = parts_for(snapshot_workers(), header, shards)
    swept: list[tuple[str, Row]] = []
    merge = None
    if parts == 1:
        merge = ShardMerge(s3, bucket, header, shards, snapshot_row, tally)
        merge.migrate_legacy()
        merge.add_deltas(keys)
    cursor = sweep_to_work_on(SweepCursor.from_header(header.sweep if header else None), rebuilt_at, now)
    if cursor is not None:
        table = VehicleTableSegments(clients.dynamodb, resources.vehicles_table)
        sink = merge.add_rows if merge is not None else swept.extend
        step = sweep_step(cursor, table, sink=lambda items: sink(_item_rows(items)))
        cursor = step.cursor
        if cursor.done:
            rebuilt_at = cursor.started_at
    elif header is not None:
        cursor = SweepCursor.from_header(header.sweep)
    written_header = {
        "as_of": now.isoformat(),
        "high_water": keys[-1] if keys else high_water,
        "rebuilt_at": rebuilt_at.isoformat() if rebuilt_at else "",
        "sweep": cursor.as_header() if cursor else None,
    }
    if merge is not None:
        outcome = merge.write(written_header)
    else:
        assert header is not None  # parts_for gives 1 without a previous snapshot
        outcome, results = merge_in_parts(
            s3,
            bucket,
            header,
            shards,
            parts,
            keys,
            swept,
            written_header,
            now,
            tally,
            run_parts or process_runner(),
        )
        for part, result in enumerate(results):
            logger.info(
                "fleet snapshot part %d of %d: %d shards written, %d lines spooled, %.1f CPU s, %.1f s, "
                "%.0f MB",
                part,
                parts,
                result.written,
                result.spooled,
                result.process_cpu_s,
                result.wall_s,
                result.peak_mb,
            )
    if outcome.skipped:
        logger.warning("%d vehicle lines were not usable and were left out", outcome.skipped)
    logger.info(
        "fleet snapshot: %d shards, %d written, %d lines spooled (%d bytes compressed)",
        outcome.index.shards,
        outcome.written,
        outcome.spooled,
        outcome.spool_bytes,
    )
    return MergedSnapshot(outcome.index, tally.health(now), outcome.retired)


def _item_rows(items: Iterable[dict[str, Any]]) -> Iterator[tuple[str, Row]]:
    for item in items:
        vin = item.get("vin")
        if vin and isinstance(vin, str):
            yield vin, snapshot_row(item)


def fleet_health(rows: dict[str, Row], as_of: datetime, source: str = "table") -> FleetHealth:
    vehicles = len(rows)
    online = sum(1 for row in rows.values() if row["online"])
    soc = [row["soc_pct"] for row in rows.values() if row["soc_pct"] is not None]
    return FleetHealth(
        vehicles=vehicles,
        online=online,
        connectivity_pct=round(100.0 * online / vehicles, 2) if vehicles else None,
        battery_average=round(math.fsum(soc) / len(soc), 2) if soc else None,
        needs_update=sum(1 for row in rows.values() if row["needs_update"]),
        versions=_tally(row["firmware_version"] for row in rows.values()),
        regions=_tally(row["region"] for row in rows.values()),
        as_of=as_of.isoformat(),
        source=source,
    )


def _tally(values: Iterable[Any]) -> dict[str, int]:
    return dict(Counter(value for value in values if value is not None).most_common())


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


@dataclass
class FleetRefresh:
    """One tick's fleet: the refreshed snapshot's rows (VIN -> row, a shard read when first asked
    for) and the numbers published."""

    rows: Mapping[str, Row]
    health: FleetHealth


def refresh_fleet(
    clients: ClientFactory,
    resources: Resources,
    now: datetime | None = None,
    run_parts: PartRunner | None = None,
) -> FleetRefresh:
    """Refresh the fleet snapshot and publish FleetHealth metrics; returns both. Once per tick.

    The snapshot is the previous one plus the processor's deltas since, merged one VIN-hash shard at
    a time, so a tick's memory is one shard, not the fleet; every 30 minutes a healing sweep reads the
    vehicles table in parallel segments, a bounded share per tick. Publishes
    ``VehiclesOnline``, ``BatteryAverage``, ``ConnectivityPercent`` (the alarm's metric) and
    ``Vehicles``, dimensionless. An empty fleet publishes no percentages (the alarm treats it as missing).
    """
    now = now or datetime.now(UTC)
    s3, bucket = clients.s3, resources.telemetry_bucket
    merged = _merged_snapshot(clients, resources, now, run_parts)
    write_index(s3, bucket, merged.index)  # last: every shard it names is written
    if merged.retired:
        delete_keys(s3, bucket, merged.retired)
    delete_deltas_before(s3, bucket, time_bound_key(now - DELTA_RETENTION))
    MetricsWriter(NAMESPACE).publish(health_datums(merged.health), now)
    # Eligibility looks up a page's vehicles: every shard it touches stays cached for the tick.
    return FleetRefresh(ShardedRows(s3, bucket, merged.index, cached=merged.index.shards), merged.health)


def publish_fleet_health(
    clients: ClientFactory, resources: Resources, now: datetime | None = None
) -> FleetHealth:
    """:func:`refresh_fleet`, for callers that need only the numbers."""
    return refresh_fleet(clients, resources, now).health


def current_fleet_health(clients: ClientFactory, resources: Resources, live: bool = False) -> FleetHealth:
    """The fleet summary for operators: from the snapshot when there is one, else a live scan."""
    now = datetime.now(UTC)
    index = None if live else _previous_index(clients, resources)
    if index is not None:
        as_of = datetime.fromisoformat(index.as_of) if index.as_of else now
        rows: dict[str, Row] = {}
        for shard in ShardedRows(clients.s3, resources.telemetry_bucket, index, cached=1).shard_rows():
            rows.update(shard)
        return fleet_health(rows, as_of, source="snapshot")
    return fleet_health(fleet_rows(scan_vehicles(clients.dynamodb, resources.vehicles_table), now), now)
