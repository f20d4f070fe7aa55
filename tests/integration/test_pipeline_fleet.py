"""Fleet health, the fleet snapshot and the operator commands on top of the pipeline's output."""

from __future__ import annotations

import gzip
import json
import time
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from fleetota_core.adapters.fleet_snapshot import DELTA_PREFIX, LEGACY_SNAPSHOT_KEY, SNAPSHOT_KEY, delta_key
from fleetota_core.cli import main
from fleetota_core.services.ingest.fleet_health import publish_fleet_health
from fleetota_core.views.fleet import fleet_frame
from fleetota_core.views.fleet_snapshot import read_snapshot_frame
from simulator.fleet import generate_fleet
from simulator.record import encode
from simulator.vehicle_keys import register_fleet

if TYPE_CHECKING:
    import pytest

    from tests.integration.conftest import LocalStack


def _ingest_fleet(stack: LocalStack, count: int) -> list:
    fleet = generate_fleet(count, 3)
    register_fleet(stack.clients, stack.resources, fleet)  # provisioned before they report
    now = time.time()
    lines = []
    for vehicle in fleet:
        vehicle.seq += 1
        lines.append(encode(vehicle, now - 2).encode())
    body = gzip.compress(b"\n".join(lines) + b"\nnot json\n")
    stack.clients.s3.put_object(
        Bucket=stack.resources.telemetry_bucket, Key="raw/dt=2026-11-26/hour=11/f.ndjson.gz", Body=body
    )
    stack.runtime.drain(timeout=30)
    return fleet


def test_fleet_health_writes_the_snapshot_and_publishes_dimensionless_fleet_metrics(stack: LocalStack):
    fleet = _ingest_fleet(stack, 25)
    now = datetime.now(UTC)

    with stack.runtime.emf_forwarded():  # the metrics leave as EMF, as from the update manager
        health = publish_fleet_health(stack.clients, stack.resources, now)

    snapshot = read_snapshot_frame(stack.clients, stack.resources)
    assert snapshot is not None and len(snapshot) == health.vehicles == 25
    assert sorted(snapshot["vin"]) == sorted(v.vin for v in fleet)
    assert health.online == int(snapshot["online"].sum())
    assert abs(health.battery_average - snapshot["soc_pct"].mean()) < 0.01
    assert sum(health.versions.values()) == 25
    for name in ("VehiclesOnline", "BatteryAverage", "ConnectivityPercent"):
        points = stack.clients.cloudwatch.get_metric_statistics(
            Namespace="FleetHealth",
            MetricName=name,
            StartTime=now - timedelta(minutes=5),
            EndTime=now + timedelta(minutes=5),
            Period=60,
            Statistics=["Average"],
        )["Datapoints"]
        assert len(points) == 1, name


def test_operator_commands_print_stats_fleet_and_one_vehicle_as_json(
    stack: LocalStack, capsys: pytest.CaptureFixture[str]
):
    fleet = _ingest_fleet(stack, 6)
    with stack.runtime.emf_forwarded():  # its EMF metric lines are not the CLI's output
        publish_fleet_health(stack.clients, stack.resources)

    assert main(["telemetry", "stats", "--json"]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert (stats["received"], stats["stored"], stats["quarantined"]) == (7, 6, 1)
    assert stats["quarantined_by_reason"] == {"malformed_json": 1} and stats["dlq"] == 0

    assert main(["fleet", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["vehicles"] == 6 and summary["source"] == "snapshot"

    assert main(["vehicle", fleet[0].vin, "--json"]) == 0
    state = json.loads(capsys.readouterr().out)
    assert state["vin"] == fleet[0].vin and state["last_seq"] == fleet[0].seq

    assert main(["vehicle", "5YJ3E1EA0PF000003"]) == 1
    assert capsys.readouterr().err.startswith("error: ")
    assert main(["telemetry", "stats"]) == 0
    assert "received" in capsys.readouterr().out


def test_the_snapshot_merges_the_processors_deltas_without_rescanning_the_table(stack: LocalStack):
    fleet = _ingest_fleet(stack, 5)
    first = publish_fleet_health(stack.clients, stack.resources, datetime.now(UTC))
    rebuilt_at = read_snapshot_frame(stack.clients, stack.resources).attrs["rebuilt_at"]
    assert first.vehicles == 5
    # Two vehicles move far and one new vehicle appears.
    later = time.time()
    lines = []
    for vehicle in fleet[:2]:
        vehicle.seq += 1
        vehicle.lat += 0.1
        lines.append(encode(vehicle, later).encode())
    newcomer = generate_fleet(6, 99)[-1]
    register_fleet(stack.clients, stack.resources, [newcomer])
    newcomer.seq += 1
    lines.append(encode(newcomer, later).encode())
    stack.clients.s3.put_object(
        Bucket=stack.resources.telemetry_bucket,
        Key="raw/dt=2026-11-26/hour=12/g.ndjson.gz",
        Body=gzip.compress(b"\n".join(lines) + b"\n"),
    )
    stack.runtime.drain(timeout=30)
    deltas = stack.clients.s3.list_objects_v2(
        Bucket=stack.resources.telemetry_bucket, Prefix="snapshots/fleet/deltas/"
    ).get("Contents", [])
    assert len(deltas) >= 1

    second = publish_fleet_health(stack.clients, stack.resources, datetime.now(UTC) + timedelta(seconds=45))

    snapshot = read_snapshot_frame(stack.clients, stack.resources)
    assert snapshot.attrs["rebuilt_at"] == rebuilt_at  # merged, not rescanned
    assert second.vehicles == 6 and len(snapshot) == 6
    moved = snapshot.set_index("vin").loc[[v.vin for v in fleet[:2]]]
    assert list(moved["last_seq"]) == [v.seq for v in fleet[:2]]


def test_an_old_parquet_snapshot_and_unreadable_objects_are_ignored_and_the_snapshot_rebuilt(
    stack: LocalStack,
):
    # Given a bucket an earlier FleetOTA wrote to: its Parquet snapshot and delta, and a corrupt snapshot
    fleet = _ingest_fleet(stack, 4)
    s3, bucket = stack.clients.s3, stack.resources.telemetry_bucket
    s3.put_object(Bucket=bucket, Key=LEGACY_SNAPSHOT_KEY, Body=b"PAR1\x15\x04PAR1")
    s3.put_object(Bucket=bucket, Key=f"{DELTA_PREFIX}0000000000001-0123456789ab.parquet", Body=b"PAR1")
    s3.put_object(Bucket=bucket, Key=SNAPSHOT_KEY, Body=b"PAR1\x15\x04PAR1")

    # Then the dashboard does not crash: it falls back to the vehicles table
    assert sorted(fleet_frame(stack.clients, stack.resources)["vin"]) == sorted(v.vin for v in fleet)

    # When the update manager's schedule runs, Then it rebuilds the snapshot from the table
    now = datetime.now(UTC)
    assert publish_fleet_health(stack.clients, stack.resources, now).vehicles == 4
    snapshot = read_snapshot_frame(stack.clients, stack.resources)
    assert len(snapshot) == 4 and snapshot.attrs["rebuilt_at"] == now.isoformat()
    left = {o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix=DELTA_PREFIX).get("Contents", [])}
    assert not any(key.endswith(".parquet") for key in left), "the old delta is cleaned up"

    # And a corrupt delta in the merge window is skipped, the others merged
    s3.put_object(Bucket=bucket, Key=delta_key(now + timedelta(seconds=1)), Body=b"not gzip")
    second = publish_fleet_health(stack.clients, stack.resources, now + timedelta(seconds=45))
    assert second.vehicles == 4
    assert read_snapshot_frame(stack.clients, stack.resources).attrs["rebuilt_at"] == now.isoformat()
