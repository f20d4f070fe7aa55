"""The ledger commit that carries vehicle writes, against the local stack: one TransactWriteItems,
all or nothing, and the refusals it hands back by index."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest

from fleetota_core.adapters.ledger import DynamoLedger
from fleetota_core.adapters.vehicle_state import DynamoVehicleStates
from fleetota_core.domain.enrichment import ReleaseCatalog, enrich
from fleetota_core.domain.telemetry import TelemetryRecord
from fleetota_core.errors import ValidationError
from fleetota_core.services.ingest.ports import MAX_COMMIT_ITEMS, ObjectRef, VehicleWrite
from simulator.fleet import generate_fleet
from simulator.record import encode

if TYPE_CHECKING:
    from conftest import LocalStack

    from fleetota_core.domain.enrichment import VehicleState

# DynamoDB's limit on a transaction's total size; moto does not check it.
MAX_TRANSACTION_BYTES = 4 * 1024 * 1024


def _states(count: int, now: datetime) -> list[VehicleState]:
    records = (
        TelemetryRecord.model_validate_json(encode(v, now.timestamp(), None, True))
        for v in generate_fleet(count, seed=33)
    )
    return [enrich(r, ReleaseCatalog(), now) for r in records]


def _stored(stack: LocalStack) -> int:
    ledger = DynamoLedger(stack.clients.dynamodb, stack.resources.ledger_table)
    return sum(hour.get("stored", 0) for hour in ledger.counters().values())


def _sent(stack: LocalStack) -> list[dict[str, Any]]:
    sent: list[dict[str, Any]] = []
    stack.clients.dynamodb.meta.events.register(
        "before-parameter-build.dynamodb.TransactWriteItems", lambda params, **_: sent.append(dict(params))
    )
    return sent


def test_a_commit_writes_its_markers_counters_and_vehicles_in_one_transaction_or_nothing(stack: LocalStack):
    now = datetime.now(UTC)
    ledger = DynamoLedger(stack.clients.dynamodb, stack.resources.ledger_table)
    vehicles = DynamoVehicleStates(stack.clients.dynamodb, stack.resources.vehicles_table, clock=lambda: now)
    bucket = stack.resources.telemetry_bucket
    first, second, third = (ObjectRef(bucket, f"raw/{n}.gz", etag=n) for n in ("a", "b", "c"))
    one, two = _states(2, now - timedelta(seconds=5))
    sent = _sent(stack)

    # A put and an update ride with the marker: one request writes all three.
    writes = [VehicleWrite(one, whole=True), VehicleWrite(two, whole=False)]
    assert ledger.commit_carrying(
        [(first, {"received": 3, "stored": 3})], vehicles.commit_items(writes), now
    ) == (
        {},
        set(),
    )
    assert len(sent) == 1 and len(sent[0]["TransactItems"]) == 4  # marker, 2 vehicles, counters
    assert vehicles.get(one.vin)["last_seq"] == one.last_seq
    assert vehicles.get(two.vin)["drive_state"] == two.drive_state
    assert _stored(stack) == 3

    # An older reading of vehicle one is refused by its condition: nothing of the commit is written.
    older = replace(one, last_seq=one.last_seq - 1, drive_state="charging")
    newer_two = replace(two, last_seq=two.last_seq + 1, drive_state="parked")
    items = vehicles.commit_items([VehicleWrite(newer_two, whole=False), VehicleWrite(older, whole=True)])
    assert ledger.commit_carrying([(second, {"received": 2, "stored": 2})], items, now) == ({}, {1})
    assert vehicles.get(two.vin)["drive_state"] == two.drive_state
    assert ledger.processed_many([second]) == {} and _stored(stack) == 3

    # An object committed before is handed back with what its delivery received.
    assert ledger.commit_carrying(
        [(third, {"received": 1, "stored": 1}), (first, {"received": 3, "stored": 3})], [], now
    ) == ({1: 3}, set())
    assert ledger.processed_many([third]) == {} and _stored(stack) == 3


def test_a_full_commit_stays_within_dynamodb_s_transaction_limits(stack: LocalStack):
    now = datetime.now(UTC)
    ledger = DynamoLedger(stack.clients.dynamodb, stack.resources.ledger_table)
    vehicles = DynamoVehicleStates(stack.clients.dynamodb, stack.resources.vehicles_table, clock=lambda: now)
    refs = [ObjectRef(stack.resources.telemetry_bucket, f"raw/full-{n}.gz", etag=str(n)) for n in range(10)]
    states = _states(MAX_COMMIT_ITEMS - len(refs), now - timedelta(seconds=5))
    commits = [(ref, {"received": 1, "stored": 1}) for ref in refs]
    sent = _sent(stack)

    # One write too many is refused here, before AWS would.
    with pytest.raises(ValidationError, match="100 items per transaction"):
        ledger.commit_carrying(
            commits, vehicles.commit_items([VehicleWrite(s, whole=True) for s in states]), now
        )
    assert sent == []

    fitting = vehicles.commit_items([VehicleWrite(s, whole=True) for s in states[:-1]])
    assert ledger.commit_carrying(commits, fitting, now) == ({}, set())
    assert len(sent[0]["TransactItems"]) == MAX_COMMIT_ITEMS
    assert len(json.dumps(sent[0]).encode()) < MAX_TRANSACTION_BYTES / 10
    assert _stored(stack) == 10
    assert all(vehicles.get(s.vin) is not None for s in states[:-1])
