"""The fleet snapshot: every vehicle's latest state as one Parquet object, the fleet pages' read model.

Written on the schedule by ``publish_fleet_health`` at
``s3://<telemetry bucket>/snapshots/fleet/latest.parquet``: the previous snapshot plus the deltas the
telemetry processor wrote since (``snapshots/fleet/deltas/``, one small parquet per invocation of the
vehicle states it wrote), with a full vehicles-table scan only to start and every 30 minutes to heal.

Columns (``SNAPSHOT_SCHEMA``): vin, make, model, model_year, hw_rev, firmware_version, region, metro,
last_ts (UTC timestamp), lat, lon, speed_kph, soc_pct, battery_category, charging, drive_state,
network, signal_dbm, odometer_km, online (reported online *and* heard from within 5 minutes),
needs_update, newest_compatible, ota_status, last_ts_ms, last_seq.
"""

from __future__ import annotations

import io
import uuid
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.parquet as pq
from botocore.exceptions import BotoCoreError, ClientError

from fleetota_core.adapters.aws_errors import error_code, translate
from fleetota_core.adapters.vehicle_state import item_values

if TYPE_CHECKING:
    from datetime import datetime

    import pandas as pd

    from fleetota_core.adapters.clients import ClientFactory
    from fleetota_core.adapters.resources import Resources

SNAPSHOT_KEY = "snapshots/fleet/latest.parquet"
DELTA_PREFIX = "snapshots/fleet/deltas/"
AS_OF_KEY = "fleetota_as_of"
HIGH_WATER_KEY = "fleetota_high_water"  # the last delta key merged into this snapshot
REBUILT_AT_KEY = "fleetota_rebuilt_at"  # when the snapshot was last rebuilt from a full table scan
SNAPSHOT_SCHEMA = pa.schema(
    [
        ("vin", pa.string()),
        ("make", pa.string()),
        ("model", pa.string()),
        ("model_year", pa.int32()),
        ("hw_rev", pa.string()),
        ("firmware_version", pa.string()),
        ("region", pa.string()),
        ("metro", pa.string()),
        ("last_ts", pa.timestamp("ms", tz="UTC")),
        ("lat", pa.float64()),
        ("lon", pa.float64()),
        ("speed_kph", pa.float64()),
        ("soc_pct", pa.float64()),
        ("battery_category", pa.string()),
        ("charging", pa.bool_()),
        ("drive_state", pa.string()),
        ("network", pa.string()),
        ("signal_dbm", pa.float64()),
        ("odometer_km", pa.float64()),
        ("online", pa.bool_()),
        ("needs_update", pa.bool_()),
        ("newest_compatible", pa.string()),
        ("ota_status", pa.string()),
        ("last_ts_ms", pa.int64()),
        ("last_seq", pa.int64()),
    ]
)
SNAPSHOT_COLUMNS = tuple(SNAPSHOT_SCHEMA.names)


def scan_vehicles(dynamodb: Any, table: str) -> list[dict[str, Any]]:
    """Every vehicle item as plain values, projected to what the snapshot needs."""
    names = {f"#v{i}": name for i, name in enumerate(SNAPSHOT_COLUMNS)}
    kwargs: dict[str, Any] = {
        "TableName": table,
        "ProjectionExpression": ", ".join(names),
        "ExpressionAttributeNames": names,
    }
    items: list[dict[str, Any]] = []
    try:
        while True:
            page = dynamodb.scan(**kwargs)
            items.extend(item_values(item) for item in page.get("Items", []))
            if "LastEvaluatedKey" not in page:
                return items
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
    except (ClientError, BotoCoreError) as exc:
        raise translate(exc, f"scanning {table}") from exc


def to_parquet(frame: pd.DataFrame, metadata: dict[str, str]) -> bytes:
    table = pa.Table.from_pandas(frame[list(SNAPSHOT_COLUMNS)], schema=SNAPSHOT_SCHEMA, preserve_index=False)
    table = table.replace_schema_metadata(metadata)
    sink = io.BytesIO()
    pq.write_table(table, sink, compression="zstd")
    return sink.getvalue()


def _put(s3: Any, bucket: str, key: str, body: bytes) -> str:
    try:
        s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType="application/parquet")
    except (ClientError, BotoCoreError) as exc:
        raise translate(exc, f"writing {key} to {bucket}") from exc
    return key


def write_fleet_snapshot(
    s3: Any, bucket: str, frame: pd.DataFrame, as_of: datetime, high_water: str, rebuilt_at: datetime
) -> str:
    metadata = {
        AS_OF_KEY: as_of.isoformat(),
        HIGH_WATER_KEY: high_water,
        REBUILT_AT_KEY: rebuilt_at.isoformat(),
    }
    return _put(s3, bucket, SNAPSHOT_KEY, to_parquet(frame, metadata))


def delta_key(at: datetime) -> str:
    """Deltas sort by the time they were written (fixed-width epoch ms), then by a random suffix."""
    return f"{DELTA_PREFIX}{int(at.timestamp() * 1000):013d}-{uuid.uuid4().hex[:12]}.parquet"


def time_bound_key(at: datetime) -> str:
    """A key that sorts after every delta written before ``at`` and before every later one."""
    return f"{DELTA_PREFIX}{int(at.timestamp() * 1000):013d}."


def write_delta(s3: Any, bucket: str, frame: pd.DataFrame, at: datetime) -> str:
    """The vehicle states one processor invocation wrote, for the next snapshot to merge."""
    return _put(s3, bucket, delta_key(at), to_parquet(frame, {AS_OF_KEY: at.isoformat()}))


def list_deltas(s3: Any, bucket: str, after: str, before: str) -> list[str]:
    """Delta keys strictly after ``after`` and before ``before``, oldest first."""
    keys: list[str] = []
    kwargs: dict[str, Any] = {"Bucket": bucket, "Prefix": DELTA_PREFIX, "StartAfter": after}
    try:
        while True:
            page = s3.list_objects_v2(**kwargs)
            for obj in page.get("Contents", []):
                if obj["Key"] >= before:
                    return keys
                keys.append(obj["Key"])
            if not page.get("IsTruncated"):
                return keys
            kwargs["ContinuationToken"] = page["NextContinuationToken"]
    except (ClientError, BotoCoreError) as exc:
        raise translate(exc, f"listing fleet snapshot deltas in {bucket}") from exc


def delete_deltas_before(s3: Any, bucket: str, before: str) -> int:
    """Delete deltas older than ``before`` (already merged); returns how many."""
    keys = list_deltas(s3, bucket, after=DELTA_PREFIX, before=before)
    try:
        for start in range(0, len(keys), 1000):
            chunk = [{"Key": key} for key in keys[start : start + 1000]]
            s3.delete_objects(Bucket=bucket, Delete={"Objects": chunk, "Quiet": True})
    except (ClientError, BotoCoreError) as exc:
        raise translate(exc, f"deleting merged fleet snapshot deltas in {bucket}") from exc
    return len(keys)


def read_parquet(s3: Any, bucket: str, key: str) -> tuple[pd.DataFrame, dict[str, str]] | None:
    """A parquet object and its FleetOTA metadata, or None if it does not exist."""
    try:
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    except ClientError as exc:
        if error_code(exc) in {"NoSuchKey", "404"}:
            return None
        raise translate(exc, f"reading {key}") from exc
    except BotoCoreError as exc:
        raise translate(exc, f"reading {key}") from exc
    table = pq.read_table(io.BytesIO(body))
    metadata = {
        k.decode(): v.decode() for k, v in (table.schema.metadata or {}).items() if k.startswith(b"fleetota")
    }
    return table.to_pandas(), metadata


def read_fleet_snapshot(clients: ClientFactory, resources: Resources) -> pd.DataFrame | None:
    """The latest fleet snapshot (columns as ``SNAPSHOT_COLUMNS``), or None before the first one.

    ``frame.attrs`` holds ``as_of`` (when it was taken), ``high_water`` and ``rebuilt_at``.
    """
    found = read_parquet(clients.s3, resources.telemetry_bucket, SNAPSHOT_KEY)
    if found is None:
        return None
    frame, metadata = found
    frame.attrs.update(
        as_of=metadata.get(AS_OF_KEY, ""),
        high_water=metadata.get(HIGH_WATER_KEY, ""),
        rebuilt_at=metadata.get(REBUILT_AT_KEY, ""),
    )
    return frame
