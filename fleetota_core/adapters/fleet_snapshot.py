"""The fleet snapshot: every vehicle's latest state as one Parquet object, the fleet pages' read model.

Written on the schedule by ``publish_fleet_health`` (one vehicles-table scan per tick instead of one
per dashboard refresh) at ``s3://<telemetry bucket>/snapshots/fleet/latest.parquet``.

Columns (``SNAPSHOT_SCHEMA``): vin, make, model, model_year, hw_rev, firmware_version, region, metro,
last_ts (UTC timestamp), lat, lon, speed_kph, soc_pct, battery_category, charging, drive_state,
network, signal_dbm, odometer_km, online (reported online *and* heard from within 5 minutes),
needs_update, newest_compatible, ota_status.
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.parquet as pq
from botocore.exceptions import BotoCoreError, ClientError

from fleetota_core.adapters.aws_failures import error_code, translate
from fleetota_core.adapters.vehicle_state import item_values

if TYPE_CHECKING:
    from datetime import datetime

    import pandas as pd

    from fleetota_core.adapters.clients import ClientFactory
    from fleetota_core.adapters.resources import Resources

SNAPSHOT_KEY = "snapshots/fleet/latest.parquet"
AS_OF_KEY = "fleetota_as_of"
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
    ]
)
SNAPSHOT_COLUMNS = tuple(SNAPSHOT_SCHEMA.names)


def scan_vehicles(dynamodb: Any, table: str) -> list[dict[str, Any]]:
    """Every vehicle item as plain values, projected to what the snapshot needs."""
    names = {f"#v{i}": name for i, name in enumerate((*SNAPSHOT_COLUMNS, "last_ts_ms"))}
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


def to_parquet(frame: pd.DataFrame, as_of: datetime) -> bytes:
    table = pa.Table.from_pandas(frame[list(SNAPSHOT_COLUMNS)], schema=SNAPSHOT_SCHEMA, preserve_index=False)
    table = table.replace_schema_metadata({AS_OF_KEY: as_of.isoformat()})
    sink = io.BytesIO()
    pq.write_table(table, sink, compression="zstd")
    return sink.getvalue()


def write_fleet_snapshot(s3: Any, bucket: str, frame: pd.DataFrame, as_of: datetime) -> str:
    body = to_parquet(frame, as_of)
    try:
        s3.put_object(Bucket=bucket, Key=SNAPSHOT_KEY, Body=body, ContentType="application/parquet")
    except (ClientError, BotoCoreError) as exc:
        raise translate(exc, f"writing the fleet snapshot to {bucket}") from exc
    return SNAPSHOT_KEY


def read_fleet_snapshot(clients: ClientFactory, resources: Resources) -> pd.DataFrame | None:
    """The latest fleet snapshot (columns as ``SNAPSHOT_COLUMNS``), or None before the first one.

    ``frame.attrs["as_of"]`` holds when it was taken (ISO 8601 UTC).
    """
    try:
        body = clients.s3.get_object(Bucket=resources.telemetry_bucket, Key=SNAPSHOT_KEY)["Body"].read()
    except ClientError as exc:
        if error_code(exc) in {"NoSuchKey", "404"}:
            return None
        raise translate(exc, "reading the fleet snapshot") from exc
    except BotoCoreError as exc:
        raise translate(exc, "reading the fleet snapshot") from exc
    table = pq.read_table(io.BytesIO(body))
    frame = table.to_pandas()
    frame.attrs["as_of"] = (table.schema.metadata or {}).get(AS_OF_KEY.encode(), b"").decode()
    return frame
