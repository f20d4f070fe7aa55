"""The sharded fleet snapshot on the local stack's S3: an upgraded stack's single document becomes
shards, every reader (dashboard frame, targeting, eligibility, the change feed) reads them, and a
growing fleet doubles its shards."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from fleetota_core.adapters import fleet_shards, vehicle_directory
from fleetota_core.adapters.fleet_changes import SnapshotDeltaFeed
from fleetota_core.adapters.fleet_shard_rows import SnapshotLastSeen
from fleetota_core.adapters.fleet_shards import INDEX_KEY, shard_key
from fleetota_core.adapters.fleet_snapshot import SNAPSHOT_KEY, encode, time_bound_key
from fleetota_core.adapters.fleet_snapshot_reads import read_snapshot_index
from fleetota_core.services.ingest.fleet_health import fleet_rows, refresh_fleet
from fleetota_core.views.fleet_snapshot import fleet_snapshot_version, read_snapshot_frame
from tests.integration.test_campaign_services import MODEL, seed_vehicles

if TYPE_CHECKING:
    import pytest

    from tests.integration.conftest import LocalStack


def keys(stack: LocalStack) -> set[str]:
    page = stack.clients.s3.list_objects_v2(
        Bucket=stack.resources.telemetry_bucket, Prefix="snapshots/fleet/"
    )
    return {obj["Key"] for obj in page.get("Contents", [])}


def test_an_upgraded_stacks_single_document_becomes_shards_that_every_reader_reads(
    stack: LocalStack, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setattr(fleet_shards, "SHARD_VEHICLES", 4)
    monkeypatch.setattr(vehicle_directory, "SMALL_FLEET_ROWS", 0)
    # Given a stack saved by an earlier version: vehicles, and the snapshot as one document
    vins = seed_vehicles(stack, 20)
    now = datetime.now(UTC)
    items = [
        {"vin": v, "make": "Tesla", "model": MODEL, "model_year": 2023, "hw_rev": "HW4", "region": "us-west",
         "firmware_version": "1.0.0", "network": "LTE", "last_ts": now.isoformat(),
         "last_ts_ms": int(now.timestamp() * 1000), "last_seq": 9}
        for v in vins
    ]  # fmt: skip
    swept = (now - timedelta(minutes=1)).isoformat()
    bucket = stack.resources.telemetry_bucket
    stack.clients.s3.put_object(
        Bucket=bucket,
        Key=SNAPSHOT_KEY,
        Body=encode(
            fleet_rows(items, now), now.isoformat(), time_bound_key(now - timedelta(seconds=30)), swept,
            {"started_at": swept, "segments": 16, "todo": []},
        ),
    )  # fmt: skip
    assert read_snapshot_frame(stack.clients, stack.resources) is not None  # read until the first tick
    before = fleet_snapshot_version(stack.clients, stack.resources)

    # When the update manager ticks
    refreshed = refresh_fleet(stack.clients, stack.resources, now=now + timedelta(seconds=31))

    # Then the document is replaced by an index and 8 shards (20 vehicles, 4 a shard)
    assert SNAPSHOT_KEY not in keys(stack)
    index = read_snapshot_index(stack.clients.s3, bucket)
    assert index is not None and index.shards == 8 and index.vehicles == 20
    assert {INDEX_KEY, *(shard_key(8, i) for i in range(8))} <= keys(stack)
    assert fleet_snapshot_version(stack.clients, stack.resources) not in (None, before)
    # and every reader reads the shards: the dashboard's frame, eligibility, targeting, the change feed
    frame = read_snapshot_frame(stack.clients, stack.resources)
    assert frame is not None and sorted(frame["vin"]) == sorted(vins) and frame["online"].all()
    assert refreshed.health.vehicles == 20 and refreshed.rows[vins[3]]["last_seq"] == 9
    last_seen = SnapshotLastSeen(stack.clients, stack.resources)
    assert last_seen().lookup(vins[:5]).keys() == set(vins[:5])  # type: ignore[attr-defined]
    assert sorted(v.vin for v in stack.ports.vehicles.all()) == sorted(vins)
    feed = SnapshotDeltaFeed(stack.clients.s3, bucket, timedelta(seconds=30), timedelta(hours=1))
    assert sorted(c.vin for c in feed.whole_fleet().vehicles) == sorted(vins)


def test_a_growing_fleet_doubles_its_shards_and_the_old_ones_are_deleted(
    stack: LocalStack, monkeypatch: pytest.MonkeyPatch
):
    vins = seed_vehicles(stack, 10)
    now = datetime.now(UTC)
    refresh_fleet(stack.clients, stack.resources, now=now)
    assert read_snapshot_index(stack.clients.s3, stack.resources.telemetry_bucket).shards == 1  # type: ignore[union-attr]

    monkeypatch.setattr(fleet_shards, "SHARD_VEHICLES", 3)
    rows = refresh_fleet(stack.clients, stack.resources, now=now + timedelta(minutes=1)).rows

    assert shard_key(1, 0) not in keys(stack) and {shard_key(4, i) for i in range(4)} <= keys(stack)
    assert sorted(rows) == sorted(vins)
