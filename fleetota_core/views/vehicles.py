"""One vehicle in detail: its latest state, recent telemetry and OTA history."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pandas as pd

from fleetota_core.adapters.object_reader import newest_objects, read_text
from fleetota_core.adapters.table_reader import get_item

if TYPE_CHECKING:
    from fleetota_core.adapters.clients import ClientFactory
    from fleetota_core.adapters.resources import Resources
    from fleetota_core.services.campaigns.ports import CampaignPorts

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


OTA_HISTORY_COLUMNS = ["campaign_id", "state", "target_version", "attempt", "updated_at", "reason"]


def ota_history(ports: CampaignPorts, vin: str) -> pd.DataFrame:
    """Every deployment of ``vin`` across campaigns, newest first, with the version it was to install."""
    deployments = ports.deployments.for_vin(vin)
    targets: dict[str, str | None] = {}
    rows = []
    for d in deployments:
        if d.campaign_id not in targets:
            campaign = ports.campaigns.get(d.campaign_id)
            targets[d.campaign_id] = campaign.release.version if campaign else None
        rows.append(
            {
                "campaign_id": d.campaign_id,
                "state": d.state.value,
                "target_version": targets[d.campaign_id],
                "attempt": d.attempt,
                "updated_at": d.updated_at or d.notified_at or d.created_at,
                "reason": d.reason or d.error_code,
            }
        )
    df = pd.DataFrame(rows, columns=OTA_HISTORY_COLUMNS)
    return df.sort_values("updated_at", ascending=False, na_position="last", ignore_index=True)


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


def raw_hour_prefixes(now: datetime, hours: int = 2) -> list[str]:
    """The raw-batch prefixes of the last ``hours`` hours, newest first (keys are laid out by hour)."""
    return [
        f"{RAW_PREFIX}dt={t:%Y-%m-%d}/hour={t:%H}/" for t in (now - timedelta(hours=h) for h in range(hours))
    ]


def _newest_raw_objects(
    clients: ClientFactory, resources: Resources, limit: int, now: datetime
) -> list[dict]:
    # Listing all of raw/ would return the oldest keys first; the hour prefixes keep it to recent ones.
    found: list[dict] = []
    for prefix in raw_hour_prefixes(now):
        found += newest_objects(clients.s3, resources.telemetry_bucket, prefix, limit=limit)
        if len(found) >= limit:
            break
    return sorted(found, key=lambda o: o["modified"], reverse=True)[:limit]


def recent_telemetry(
    clients: ClientFactory, resources: Resources, vin: str, batches: int = 40, now: datetime | None = None
) -> pd.DataFrame:
    """``vin``'s readings found in the newest ``batches`` raw telemetry objects, oldest first.

    Bounded by design: the raw bucket holds the whole fleet, so the detail view reads only the latest
    few batches (the simulator puts many vehicles in each) instead of scanning history.
    """
    rows: list[dict[str, Any]] = []
    needle = f'"{vin}"'
    for obj in _newest_raw_objects(clients, resources, batches, now or datetime.now(UTC)):
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
