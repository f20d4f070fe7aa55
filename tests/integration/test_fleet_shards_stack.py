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
from fleetota_core.adapters.fleet_snapshot import SNAPSHOT_KEY, encode, time_bound_key, write_delta
from fleetota_core.adapters.fleet_snapshot_reads import read_fleet_snapshot, read_snapshot_index
from fleetota_core.services.ingest import snapshot_parts
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


def test_a_tick_merges_in_worker_processes_that_reach_the_stacks_s3_and_write_what_one_process_would(
    stack: LocalStack, monkeypatch: pytest.MonkeyPatch
):
    """The update manager with the vCPUs for 4 parts: each part a `python -m` process of its own,
    reading its part of each delta on the local stack's S3 and writing its shards."""
    monkeypatch.setattr(fleet_shards, "SHARD_VEHICLES", 40)
    s3, bucket = stack.clients.s3, stack.resources.telemetry_bucket
    now = datetime.now(UTC)

    def reading(n: int, at: datetime, seq: int) -> dict:
        return {"vin": f"5YJ3E1EA0P{n:07d}", "make": "Tesla", "model": MODEL, "firmware_version": "1.0.0",
                "network": "LTE", "soc_pct": float(seq), "last_ts": at.isoformat(),
                "last_ts_ms": int(at.timestamp() * 1000), "last_seq": seq}  # fmt: skip

    first = now - timedelta(minutes=5)
    write_delta(s3, bucket, fleet_rows((reading(n, first, 1) for n in range(300)), first), first)
    refresh_fleet(stack.clients, stack.resources, now - timedelta(minutes=4))  # one shard
    refresh_fleet(stack.clients, stack.resources, now - timedelta(minutes=3))  # 300 vehicles: 8 shards
    assert read_snapshot_index(s3, bucket).shards == 8  # type: ignore[union-attr]
    for step, vehicles in enumerate((range(0, 200), range(100, 400))):
        at = now - timedelta(minutes=2) + timedelta(seconds=step)
        write_delta(s3, bucket, fleet_rows((reading(n, at, 2 + step) for n in vehicles), at), at)
    monkeypatch.setenv(snapshot_parts.WORKERS_ENV, "4")
    results: list[snapshot_parts.PartResult] = []
    run = snapshot_parts.process_runner()

    def watched(requests: list[snapshot_parts.PartRequest]) -> list[snapshot_parts.PartResult]:
        results.extend(run(requests))
        return results

    refreshed = refresh_fleet(stack.clients, stack.resources, now, run_parts=watched)

    assert len(results) == 4 and all(r.cpu_s > 0 and r.written == 2 for r in results)
    rows = read_fleet_snapshot(stack.clients, stack.resources).rows()  # type: ignore[union-attr]
    assert len(rows) == 400 == refreshed.health.vehicles
    expected = {f"5YJ3E1EA0P{n:07d}": 1 if n >= 400 else (3 if n >= 100 else 2) for n in range(400)}
    assert {vin: row["last_seq"] for vin, row in rows.items()} == expected
    assert refreshed.health.battery_average == round((100 * 2.0 + 300 * 3.0) / 400, 2)
