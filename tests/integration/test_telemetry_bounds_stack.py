"""Telemetry bounds on the local stack: hostile objects, future-dated and oversized readings, through
the real adapters (S3, SQS, the processor, DynamoDB)."""

from __future__ import annotations

import gzip
import json
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from fleetota_core.adapters.table_reader import scan_table
from fleetota_core.adapters.vehicle_state import DynamoVehicleStates
from fleetota_core.domain.enrichment import ReleaseCatalog, enrich
from fleetota_core.domain.telemetry import TelemetryRecord
from fleetota_core.services.ingest.decode import MAX_OBJECT_LINES
from fleetota_core.services.ingest.stats import telemetry_stats
from simulator.fleet import generate_fleet
from simulator.record import encode
from simulator.vehicle_keys import register_fleet

if TYPE_CHECKING:
    from tests.integration.conftest import LocalStack


def _put(stack: LocalStack, key: str, body: bytes) -> None:
    stack.clients.s3.put_object(Bucket=stack.resources.telemetry_bucket, Key=key, Body=body)


def _rows(stack: LocalStack, prefix: str) -> list[dict[str, Any]]:
    s3, bucket = stack.clients.s3, stack.resources.telemetry_bucket
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])]
    return [
        json.loads(line)
        for key in keys
        for line in s3.get_object(Bucket=bucket, Key=key)["Body"].read().splitlines()
    ]


def test_a_million_line_gzip_is_quarantined_by_reference_and_the_good_objects_beside_it_are_stored(
    stack: LocalStack,
) -> None:
    now = time.time()
    fleet = generate_fleet(20, seed=11)
    register_fleet(stack.clients, stack.resources, fleet)
    good = gzip.compress(("\n".join(encode(v, now - 1) for v in fleet) + "\n").encode())
    _put(stack, "raw/dt=2026-11-30/hour=22/million.ndjson.gz", gzip.compress(b"1\n" * 1_000_000))
    _put(stack, "raw/dt=2026-11-30/hour=22/good.ndjson.gz", good)

    result = stack.runtime.drain(timeout=60)

    assert (result.received, result.failed) == (2, 0)
    (row,) = _rows(stack, "quarantine/objects/")
    assert row["source"].endswith("raw/dt=2026-11-30/hour=22/million.ndjson.gz")
    assert row["reason"] == "too_many_lines" and row["size"] == 1975
    assert row["counts"]["compressed_bytes"] == 1975 and row["counts"]["lines"] > MAX_OBJECT_LINES
    assert _rows(stack, "quarantine/records/") == []  # no line of it was copied
    stats = telemetry_stats(stack.clients, stack.resources)
    assert (stats["received"], stats["stored"], stats["quarantined"]) == (20, 20, 0)
    assert stats["objects_quarantined_by_reason"] == {"too_many_lines": 1}


def test_a_huge_seq_and_a_1970_reading_are_quarantined_and_the_vehicle_table_still_scans(
    stack: LocalStack,
) -> None:
    now = time.time()
    fleet = generate_fleet(3, seed=12)
    register_fleet(stack.clients, stack.resources, fleet)
    lines = [json.loads(encode(v, now - 1)) for v in fleet]
    lines[0]["seq"] = 10**40
    lines[1]["ts"] = "1970-01-01T00:00:00.000Z"
    body = gzip.compress(("\n".join(json.dumps(line) for line in lines) + "\n").encode())
    _put(stack, "raw/dt=2026-11-30/hour=22/bounds.ndjson.gz", body)

    assert stack.runtime.drain(timeout=30).failed == 0

    stats = telemetry_stats(stack.clients, stack.resources)
    assert stats["received"] == stats["stored"] + stats["quarantined"] == 3
    assert stats["quarantined_by_reason"] == {"expired_timestamp": 1, "impossible_value": 1}
    assert stats["lag_ms"]["mean"] < 60_000
    items = scan_table(stack.clients.dynamodb, stack.resources.vehicles_table)
    assert [item["vin"] for item in items] == [fleet[2].vin]


def test_a_future_dated_state_already_in_the_table_yields_to_the_next_reading(stack: LocalStack) -> None:
    # Given an item written before readings were bounded: a reading dated 290 s ahead
    now = datetime.now(UTC)
    (vehicle,) = generate_fleet(1, seed=13)
    record = TelemetryRecord.model_validate_json(encode(vehicle, now.timestamp()))
    ahead = now + timedelta(seconds=290)
    table = DynamoVehicleStates(stack.clients.dynamodb, stack.resources.vehicles_table, clock=lambda: now)
    poisoned = replace(enrich(record, ReleaseCatalog(), now), last_ts=ahead, last_seq=99)
    assert table.put(poisoned, ahead)
    # When the vehicle's next ordinary reading is written
    fresh = replace(enrich(record, ReleaseCatalog(), now), last_seq=5, drive_state="parked")
    written = table.put(fresh, now)
    # Then it replaces the future-dated state instead of being refused as stale
    stored = table.get(vehicle.vin)
    assert written and stored is not None
    assert (stored["last_seq"], stored["drive_state"]) == (5, "parked")
    # And an older reading still never moves the vehicle backwards
    older = replace(fresh, last_ts=now - timedelta(seconds=30), last_seq=4)
    assert not table.put(older, now)
