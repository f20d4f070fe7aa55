"""An in-memory bucket and vehicle items for the fleet snapshot's unit tests (shards, the merge)."""

from __future__ import annotations

import io
from collections import Counter
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

from botocore.exceptions import ClientError

from fleetota_core.adapters.fleet_snapshot import DELTA_PREFIX, SNAPSHOT_KEY, encode, time_bound_key

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


class MemoryS3:
    """A bucket as boto3 answers for it: the calls the snapshot makes, counted."""

    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}
        self.calls: Counter[str] = Counter()

    def put_object(self, Key: str, Body: bytes, **_: Any) -> dict[str, Any]:
        self.calls["PutObject"] += 1
        self.objects[Key] = Body
        return {}

    def get_object(self, Key: str, **_: Any) -> dict[str, Any]:
        self.calls["GetObject"] += 1
        if Key not in self.objects:
            raise ClientError({"Error": {"Code": "NoSuchKey", "Message": Key}}, "GetObject")
        return {"Body": io.BytesIO(self.objects[Key])}

    def list_objects_v2(self, Prefix: str, StartAfter: str = "", **_: Any) -> dict[str, Any]:
        keys = sorted(k for k in self.objects if k.startswith(Prefix) and k > StartAfter)
        return {"Contents": [{"Key": k} for k in keys], "IsTruncated": False}

    def delete_objects(self, Delete: dict[str, Any], **_: Any) -> dict[str, Any]:
        for obj in Delete["Objects"]:
            self.objects.pop(obj["Key"], None)
        return {}


class EmptyTable:
    def scan(self, **_: Any) -> dict[str, Any]:
        return {"Items": []}


class NoMetrics:
    def put_metric_data(self, **_: Any) -> dict[str, Any]:
        return {}


def vin(n: int) -> str:
    return f"5YJ3E1EA0P{n:07d}"


def item(n: int, at: datetime, seq: int, **values: Any) -> dict[str, Any]:
    return {
        "vin": vin(n),
        "make": "Tesla",
        "model": "Tesla Model 3",
        "model_year": 2023,
        "firmware_version": f"1.{n % 3}.0",
        "region": ("us-west", "eu-central")[n % 2],
        "last_ts": at.isoformat(),
        "last_ts_ms": int(at.timestamp() * 1000),
        "last_seq": seq,
        "soc_pct": float(n % 90),
        "network": "NONE" if n % 7 == 0 else "LTE",
        "needs_update": n % 5 == 0,
        **values,
    }


def stack(s3: MemoryS3) -> tuple[Any, Any]:
    clients = SimpleNamespace(s3=s3, dynamodb=EmptyTable(), cloudwatch=NoMetrics())
    return clients, SimpleNamespace(telemetry_bucket="telemetry", vehicles_table="vehicles")


def put_delta(s3: MemoryS3, rows: dict[str, Any], written: datetime, name: str) -> str:
    key = f"{DELTA_PREFIX}{int(written.timestamp() * 1000):013d}-{name}.ndjson.gz"
    s3.objects[key] = encode(rows, written.isoformat())
    return key


def single_document(s3: MemoryS3, rows: dict[str, Any]) -> None:
    """The snapshot an earlier version saved (a local stack's state from before the shards)."""
    swept = NOW - timedelta(minutes=5)
    s3.objects[SNAPSHOT_KEY] = encode(
        rows,
        NOW.isoformat(),
        time_bound_key(NOW - timedelta(seconds=30)),
        swept.isoformat(),
        {"started_at": swept.isoformat(), "segments": 16, "todo": []},
    )
