"""One vehicle in detail: its latest state, recent telemetry and OTA history."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import pandas as pd

from fleetota_core.adapters.object_reader import newest_objects, read_text
from fleetota_core.adapters.table_reader import get_item, query_partition

if TYPE_CHECKING:
    from datetime import datetime

    from fleetota_core.adapters.clients import ClientFactory
    from fleetota_core.adapters.resources import Resources

RAW_PREFIX = "raw/"
TELEMETRY_COLUMNS = [
    "ts",
    "seq",
    "soc_pct",
    "speed_kph",
    "signal_dbm",
    "drive_state",
    "network",
    "firmware_version",
]


def vehicle_state(clients: ClientFactory, resources: Resources, vin: str) -> dict[str, Any] | None:
    """The vehicles-table item for ``vin``, or None when the vehicle never reported."""
    return get_item(clients.dynamodb, resources.vehicles_table, {"vin": vin})


def ota_history(clients: ClientFactory, resources: Resources, vin: str) -> pd.DataFrame:
    """Every deployment of ``vin`` across campaigns, newest first."""
    items = query_partition(clients.dynamodb, resources.deployments_table, "vin", vin, index="by_vin")
    df = pd.DataFrame(items)
    if df.empty:
        return pd.DataFrame(
            columns=["campaign_id", "state", "target_version", "attempt", "updated_at", "reason"]
        )
    for column in ("state", "target_version", "attempt", "updated_at", "reason", "error_code"):
        if column not in df.columns:
            df[column] = None
    df["reason"] = df["reason"].fillna(df["error_code"])
    ordered = ["campaign_id", "state", "target_version", "attempt", "updated_at", "reason"]
    return df[ordered].sort_values("updated_at", ascending=False, na_position="last", ignore_index=True)


def _reading(record: dict[str, Any]) -> dict[str, Any]:
    position, battery = record.get("position") or {}, record.get("battery") or {}
    connectivity = record.get("connectivity") or {}
    return {
        "ts": record.get("ts"),
        "seq": record.get("seq"),
        "soc_pct": battery.get("soc_pct"),
        "speed_kph": position.get("speed_kph"),
        "signal_dbm": connectivity.get("signal_dbm"),
        "drive_state": record.get("drive_state"),
        "network": connectivity.get("network"),
        "firmware_version": record.get("firmware_version"),
    }


def recent_telemetry(
    clients: ClientFactory, resources: Resources, vin: str, batches: int = 40, since: datetime | None = None
) -> pd.DataFrame:
    """``vin``'s readings found in the newest ``batches`` raw telemetry objects, oldest first.

    Bounded by design: the raw bucket holds the whole fleet, so the detail view reads only the latest
    few batches (the simulator puts many vehicles in each) instead of scanning history.
    """
    rows: list[dict[str, Any]] = []
    needle = f'"{vin}"'
    for obj in newest_objects(clients.s3, resources.telemetry_bucket, RAW_PREFIX, limit=batches):
        if since is not None and obj["modified"] < since:
            continue
        for line in read_text(
            clients.s3, resources.telemetry_bucket, obj["key"], max_bytes=50_000_000
        ).splitlines():
            if needle not in line:
                continue
            try:
                record = json.loads(line)
            except ValueError:
                continue  # a malformed line is the pipeline's to quarantine, not the chart's to show
            if isinstance(record, dict) and record.get("vin") == vin:
                rows.append(_reading(record))
    df = pd.DataFrame(rows, columns=TELEMETRY_COLUMNS)
    df["ts"] = pd.to_datetime(df["ts"], utc=True, errors="coerce")
    return df.drop_duplicates(subset=["seq"]).sort_values("ts", ignore_index=True)
