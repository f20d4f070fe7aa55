"""Campaign creation and the fleet snapshot's refresh at 1,000,000 vehicles, beside the previous design.

    .venv/bin/python bench/fleet_scale.py [--vehicles 1000000] [--latency-ms 0] [--json]

In-memory counting clients stand in for DynamoDB and S3 (as in bench/ingest.py; moto takes about
4,000 items/s, so a 1M-item table in moto is out of reach): the vehicles table (Scan with
Segment/TotalSegments, 1 MB pages of about 1,900 projected items), the registry (projected
BatchGetItem, Scan), the deployments and ledger tables (BatchWriteItem) and the telemetry bucket
(the snapshot and its deltas). The real adapters and use cases run over them; items are built when a
page is asked for, so the fakes' cost (building typed items) stands in for botocore's parsing.
``--latency-ms`` adds a sleep per request (it releases the GIL as a network wait does), to show what
the request counts cost with the adapters' threads.

Measured, each with its requests by operation:
* campaign create (targeting, deployments, rosters) reading the snapshot; and the previous design:
  a Scan of the vehicles table and of the registry (``VehicleDirectory`` without a snapshot) and
  the deployments written one request at a time;
* campaign preview, the same way;
* the snapshot's refresh: an incremental tick (previous snapshot + deltas of every vehicle), a tick
  with its share of the healing sweep, the ticks a whole sweep takes; and the previous design's
  30-minute rebuild (one Scan of the whole table in one invocation, joined with snapshot and deltas).
"""

from __future__ import annotations

import argparse
import functools
import gc
import io
import json
import os
import sys
import time
from collections import Counter
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "unit"))

from campaign_fakes import FakeClock, FakeWorld, VehiclesFake
from campaign_world import vehicle

from fleetota_core.adapters import deployment_store
from fleetota_core.adapters.deployment_schedule import DeploymentSchedule
from fleetota_core.adapters.deployment_store import DeploymentStore
from fleetota_core.adapters.dynamo_items import to_item
from fleetota_core.adapters.fleet_shard_rows import SnapshotLastSeen
from fleetota_core.adapters.fleet_snapshot import (
    DELTA_PREFIX,
    SNAPSHOT_KEY,
    encode,
    list_deltas,
    scan_vehicles,
    time_bound_key,
)
from fleetota_core.adapters.fleet_snapshot_reads import read_fleet_snapshot
from fleetota_core.adapters.vehicle_directory import VehicleDirectory
from fleetota_core.domain.campaign import CampaignSpec, WaveSpec
from fleetota_core.domain.vin import with_check_digit
from fleetota_core.services.campaigns.create import create_campaign
from fleetota_core.services.campaigns.preview import preview_campaign
from fleetota_core.services.campaigns.releases import publish_release
from fleetota_core.services.ingest import fleet_health

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
MODEL = "Tesla Model 3"
PAGE_ITEMS = 1_900  # a 1 MB Scan page of ~550-byte projected vehicle items
METROS = ("San Francisco Bay Area", "Denver", "Berlin", "London")


@functools.cache
def vin(n: int) -> str:
    return with_check_digit(f"5YJ3E1EA0P{n:07d}")


def vehicle_values(n: int, ts_ms: int, seq: int) -> dict[str, Any]:
    return {
        "vin": vin(n), "make": "Tesla", "model": MODEL, "model_year": 2023, "hw_rev": "HW4",
        "firmware_version": "1.0.0", "region": "us-west", "metro": METROS[n % 4],
        "last_ts": datetime.fromtimestamp(ts_ms / 1000, UTC).isoformat(), "last_ts_ms": ts_ms,
        "last_seq": seq, "lat": 37.5, "lon": -122.1, "speed_kph": 0.0, "soc_pct": 20.0 + n % 80,
        "battery_category": "ok", "charging": False, "drive_state": "parked", "network": "LTE",
        "signal_dbm": -80, "odometer_km": 1000.0, "online": True, "needs_update": True,
    }  # fmt: skip


class CountingDynamo:
    """The vehicles table and registry of ``vehicles`` vehicles, made on demand; writes are counted."""

    def __init__(self, vehicles: int, calls: Counter[str], latency_s: float) -> None:
        self.vehicles = vehicles
        self.calls = calls
        self.latency_s = latency_s
        stored_at_ms = int((NOW - timedelta(minutes=20)).timestamp() * 1000)
        self._vehicle = to_item(vehicle_values(0, stored_at_ms, 1))
        identity = {"make": "Tesla", "model": MODEL, "model_year": 2023, "hw_rev": "HW4", "region": "us-west"}
        self._registration = to_item(identity)
        self._registration_full = to_item(
            {**identity, "public_key_pem": PEM, "provisioned_at": NOW.isoformat()}
        )

    def _count(self, operation: str, table: str) -> None:
        self.calls[f"{operation}:{table}"] += 1
        if self.latency_s:
            time.sleep(self.latency_s)

    def _item(self, table: str, n: int, projected: bool) -> dict[str, Any]:
        # One typed template per table, the VIN (and registry status) set per item: cheap to make, so
        # the timings are the adapters' (boto3's deserialiser runs on every item they read).
        if table == "vehicles":
            return {**self._vehicle, "vin": {"S": vin(n)}}
        status = {"S": "retired" if n % 1000 == 999 else "active"}
        template = self._registration if projected else self._registration_full
        return {**template, "vin": {"S": vin(n)}, "status": status}

    def scan(self, TableName: str, **kwargs: Any) -> dict[str, Any]:
        self._count("Scan", TableName)
        segment, segments = kwargs.get("Segment", 0), kwargs.get("TotalSegments", 1)
        start = kwargs.get("ExclusiveStartKey", {}).get("n", {"N": str(segment)})
        first = int(start["N"])
        numbers = range(first, self.vehicles, segments)[: PAGE_ITEMS if TableName == "vehicles" else 4000]
        page: dict[str, Any] = {"Items": [self._item(TableName, n, False) for n in numbers]}
        after = numbers[-1] + segments if numbers else self.vehicles
        if after < self.vehicles:
            page["LastEvaluatedKey"] = {"n": {"N": str(after)}}
        return page

    def get_paginator(self, operation: str) -> Any:
        def paginate(**kwargs: Any) -> Any:
            while True:
                page = self.scan(**kwargs)
                yield page
                if "LastEvaluatedKey" not in page:
                    return
                kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

        return SimpleNamespace(paginate=paginate)

    def batch_get_item(self, RequestItems: dict[str, Any]) -> dict[str, Any]:
        (table, request), *_ = RequestItems.items()
        self._count("BatchGetItem", table)
        numbers = [int(k["vin"]["S"][10:]) for k in request["Keys"]]
        return {"Responses": {table: [self._item(table, n, True) for n in numbers if n < self.vehicles]}}

    def batch_write_item(self, RequestItems: dict[str, Any]) -> dict[str, Any]:
        (table, _), *_ = RequestItems.items()
        self._count("BatchWriteItem", table)
        return {}


class CountingS3:
    def __init__(self, calls: Counter[str], latency_s: float) -> None:
        self.calls = calls
        self.latency_s = latency_s
        self.objects: dict[str, bytes] = {}

    def _count(self, operation: str) -> None:
        self.calls[f"S3.{operation}"] += 1
        if self.latency_s:
            time.sleep(self.latency_s)

    def put_object(self, Key: str, Body: bytes, **_: Any) -> dict[str, Any]:
        self._count("PutObject")
        self.objects[Key] = Body
        return {}

    def get_object(self, Key: str, **_: Any) -> dict[str, Any]:
        self._count("GetObject")
        if Key not in self.objects:
            from botocore.exceptions import ClientError

            raise ClientError({"Error": {"Code": "NoSuchKey", "Message": Key}}, "GetObject")
        return {"Body": io.BytesIO(self.objects[Key])}

    def list_objects_v2(self, Prefix: str, StartAfter: str = "", **_: Any) -> dict[str, Any]:
        self._count("ListObjectsV2")
        keys = sorted(k for k in self.objects if k.startswith(Prefix) and k > StartAfter)
        return {"Contents": [{"Key": k} for k in keys], "IsTruncated": False}

    def delete_objects(self, Delete: dict[str, Any], **_: Any) -> dict[str, Any]:
        self._count("DeleteObjects")
        for obj in Delete["Objects"]:
            self.objects.pop(obj["Key"], None)
        return {}


class CountingCloudWatch:
    def __init__(self, calls: Counter[str]) -> None:
        self.calls = calls

    def put_metric_data(self, **_: Any) -> dict[str, Any]:
        self.calls["CloudWatch.PutMetricData"] += 1
        return {}


def _pem() -> str:
    from cryptography.hazmat.primitives.asymmetric import ec

    from fleetota_core.domain.report_signature import public_key_pem

    return public_key_pem(ec.generate_private_key(ec.SECP256R1()))


PEM = _pem()


def timed(label: str, calls: Counter[str], action: Any, results: dict[str, Any]) -> Any:
    """Run ``action``: wall and CPU seconds (all threads of this process), requests by operation."""
    calls.clear()
    gc.collect()
    started, cpu = time.perf_counter(), time.process_time()
    value = action()
    seconds, cpu_s = time.perf_counter() - started, time.process_time() - cpu
    requests = dict(sorted(calls.items()))
    results[label] = {"seconds": round(seconds, 2), "cpu_seconds": round(cpu_s, 2), "requests": requests}
    print(f"{label:<44} {seconds:8.2f} s {cpu_s:8.2f} s CPU {sum(calls.values()):>7,} requests  {requests}")
    return value


def previous_rebuild(clients: Any, resources: Any, now: datetime) -> dict[str, Any]:
    """The 30-minute rebuild this replaces (fleet_health._merged_snapshot before issue #16, step 2)."""
    settled = time_bound_key(now - fleet_health.DELTA_SETTLE)
    rows = fleet_health.fleet_rows(scan_vehicles(clients.dynamodb, resources.vehicles_table), now)
    previous = read_fleet_snapshot(clients, resources)
    newer = previous.rows() if previous else {}
    after = (previous.high_water if previous else "") or DELTA_PREFIX
    keys = list_deltas(clients.s3, resources.telemetry_bucket, after, settled)
    fleet_health._merge_deltas(clients, resources, newer, keys)
    for v, row in newer.items():
        if v in rows and fleet_health._newer(row, rows[v]):
            rows[v] = row
    fleet_health.refresh_online(rows, now)
    clients.s3.put_object(Key=SNAPSHOT_KEY + ".previous", Body=encode(rows, now.isoformat(), settled))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vehicles", type=int, default=1_000_000)
    parser.add_argument("--deltas", type=int, default=100, help="deltas per tick, sharing every vehicle")
    parser.add_argument("--latency-ms", type=float, default=0.0)
    parser.add_argument("--json", action="store_true")
    parser.add_argument(
        "--only", choices=("campaigns", "snapshot"), help="measure only campaign create/preview, or the ticks"
    )
    parser.add_argument(
        "--no-previous", action="store_true", help="leave out the previous design's calls (scans, rebuild)"
    )
    args = parser.parse_args()
    n, latency = args.vehicles, args.latency_ms / 1000
    calls: Counter[str] = Counter()
    clients = SimpleNamespace(
        dynamodb=CountingDynamo(n, calls, latency), s3=CountingS3(calls, latency),
        cloudwatch=CountingCloudWatch(calls),
    )  # fmt: skip
    resources = SimpleNamespace(
        vehicles_table="vehicles", registry_table="registry", deployments_table="deployments",
        ledger_table="ledger", telemetry_bucket="telemetry",
    )  # fmt: skip
    results: dict[str, Any] = {"vehicles": n, "latency_ms": args.latency_ms}
    print(f"{n:,} vehicles, {args.latency_ms:g} ms per request; load average {os.getloadavg()[0]:.1f}")

    # The snapshot a running fleet has: every vehicle, swept 10 minutes ago; then a minute of deltas.
    seen_ms = int((NOW - timedelta(minutes=2)).timestamp() * 1000)
    rows = fleet_health.fleet_rows((vehicle_values(i, seen_ms, 2) for i in range(n)), NOW)
    swept = NOW - timedelta(minutes=10)
    clients.s3.objects[SNAPSHOT_KEY] = encode(
        rows, NOW.isoformat(), time_bound_key(NOW - timedelta(seconds=30)), swept.isoformat(),
        {"started_at": swept.isoformat(), "segments": 16, "todo": []},
    )  # fmt: skip
    print(f"snapshot: {len(clients.s3.objects[SNAPSHOT_KEY]) / 1e6:.0f} MB gzip", file=sys.stderr)
    del rows
    tick = NOW + timedelta(minutes=1)
    fresh_ms = int((tick - timedelta(seconds=40)).timestamp() * 1000)
    per = -(-n // args.deltas)
    for d in range(args.deltas if args.only != "campaigns" else 0):  # deltas: for the ticks only
        part = range(d * per, min(n, (d + 1) * per))
        delta = fleet_health.fleet_rows((vehicle_values(i, fresh_ms, 3) for i in part), tick)
        key = f"{DELTA_PREFIX}{fresh_ms:013d}-{d:012d}.ndjson.gz"
        clients.s3.objects[key] = encode(delta, tick.isoformat())
    gc.collect()
    if args.only != "snapshot":
        legacy = dict(clients.s3.objects)
        # Targeting reads the snapshot as a running stack holds it: in shards, which the first tick
        # makes of a single document (not timed); the ticks below start from the single document again.
        fleet_health.refresh_fleet(clients, resources, NOW)
        gc.collect()
        campaigns(clients, resources, calls, results, previous=not args.no_previous)
        clients.s3.objects = legacy
    if args.only != "campaigns":
        snapshot_ticks(clients, resources, calls, results, tick, previous=not args.no_previous)
    results["load_average_after"] = round(os.getloadavg()[0], 1)
    if args.json:
        print(json.dumps(results))


def campaigns(
    clients: Any, resources: Any, calls: Counter[str], results: dict[str, Any], previous: bool
) -> None:
    """Campaign creation and preview: the snapshot, then the previous design (table and registry scans)."""
    world = FakeWorld(clock=FakeClock(NOW), vehicles=VehiclesFake([vehicle(0, NOW)]))
    publish_release(b"x" * 4096, "2.0.0", [MODEL], [], None, "bench", "bench", world.ports)
    spec = CampaignSpec(
        name="bench", release_version="2.0.0", waves=(WaveSpec(percent=1), WaveSpec(percent=100))
    )

    write_threads = deployment_store.WRITE_THREADS

    def ports(snapshot: bool) -> Any:
        # The previous design also wrote its deployments one request after another.
        deployment_store.WRITE_THREADS = write_threads if snapshot else 1
        source = SnapshotLastSeen(clients, resources)  # type: ignore[arg-type]
        directory = VehicleDirectory(
            clients.dynamodb, "vehicles", "registry", source, source.fleet if snapshot else (lambda: None)
        )
        return replace(
            world.ports,
            vehicles=directory,
            deployments=DeploymentStore(clients.dynamodb, "deployments"),
            schedule=DeploymentSchedule(clients.dynamodb, "ledger"),
        )

    designs = ((" (snapshot)", True), (" (previous: scans)", False))[: 2 if previous else 1]
    for suffix, snapshot in designs:
        label = "campaign create" + suffix
        campaign = timed(
            label, calls, lambda s=snapshot: create_campaign(spec, "bench", ports(s), now=NOW), results
        )
        results[label]["targeted"] = campaign.total
        del campaign
    for suffix, snapshot in designs:
        label = "campaign preview" + suffix
        preview = timed(label, calls, lambda s=snapshot: preview_campaign(spec, ports(s), NOW), results)
        results[label]["matched"] = preview.matched
        del preview


def snapshot_ticks(
    clients: Any, resources: Any, calls: Counter[str], results: dict[str, Any], tick: datetime, previous: bool
) -> None:
    """The snapshot's refresh, one update-manager tick each; then the previous design's rebuild."""
    before = dict(clients.s3.objects)
    timed(
        "snapshot tick: deltas merged",
        calls,
        lambda: fleet_health.refresh_fleet(clients, resources, tick),
        results,
    )  # type: ignore[arg-type]
    clients.s3.objects = dict(before)
    due = tick + timedelta(minutes=30)
    ticks, at = 0, due
    while True:
        label = (
            "snapshot tick: deltas + first sweep share"
            if ticks == 0
            else f"snapshot tick: sweep share {ticks + 1}"
        )
        timed(label, calls, lambda a=at: fleet_health.refresh_fleet(clients, resources, a), results)  # type: ignore[arg-type]
        ticks += 1
        sweep = read_fleet_snapshot(clients, resources).sweep  # type: ignore[arg-type,union-attr]
        if not sweep["todo"] or ticks > 30:
            break
        at += timedelta(minutes=1)
    results["sweep_ticks"] = ticks
    clients.s3.objects = before
    if not previous:
        return
    timed(
        "snapshot rebuild (previous: one full scan)",
        calls,
        lambda: previous_rebuild(clients, resources, due),
        results,
    )


if __name__ == "__main__":
    main()
