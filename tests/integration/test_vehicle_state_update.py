"""The write without a read (report by exception) against the local stack: a conditional UpdateItem
that keeps the stored OTA status and never moves a vehicle backwards."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from fleetota_core.adapters.vehicle_state import DynamoVehicleStates
from fleetota_core.domain.enrichment import ReleaseCatalog, enrich
from fleetota_core.domain.telemetry import TelemetryRecord
from fleetota_core.domain.vehicle_health import ATTRIBUTES as HEALTH_ATTRIBUTES
from simulator.fleet import generate_fleet
from simulator.record import encode

if TYPE_CHECKING:
    from conftest import LocalStack

    from fleetota_core.domain.enrichment import VehicleState

# DynamoDB's limit on any expression string; moto does not enforce it.
MAX_EXPRESSION_BYTES = 4096


def _state(now: datetime, seed: int = 21) -> VehicleState:
    (vehicle,) = generate_fleet(1, seed=seed)
    record = TelemetryRecord.model_validate_json(encode(vehicle, now.timestamp(), None, True))
    return enrich(record, ReleaseCatalog(), now)


def _reported(state: VehicleState, seq: int, status: str, campaign: str) -> VehicleState:
    return replace(state, last_seq=seq, ota_status=status, ota_campaign_id=campaign)


def _requests(stack: LocalStack) -> list[dict[str, Any]]:
    sent: list[dict[str, Any]] = []
    stack.clients.dynamodb.meta.events.register(
        "before-parameter-build.dynamodb.UpdateItem", lambda params, **_: sent.append(dict(params))
    )
    return sent


def test_an_update_without_a_read_keeps_the_stored_ota_status_and_refuses_an_older_reading(
    stack: LocalStack,
) -> None:
    now = datetime.now(UTC)
    table = DynamoVehicleStates(stack.clients.dynamodb, stack.resources.vehicles_table, clock=lambda: now)
    # Given a vehicle whose item holds an OTA status from an earlier report
    first = _reported(_state(now - timedelta(seconds=30)), 5, "INSTALLING", "c1")
    assert table.put(first, now)
    sent = _requests(stack)
    # When a plain reading (no OTA report) is written without reading the item first
    plain = replace(_state(now), last_seq=6, drive_state="parked", soc_pct=41.5)
    assert plain.ota_status is None
    assert table.update_many([plain]) == (1, 0)
    # Then the reading's attributes are stored and the OTA status is kept
    stored = table.get(plain.vin)
    assert stored is not None
    assert (stored["last_seq"], stored["drive_state"], stored["soc_pct"]) == (6, "parked", 41.5)
    assert (stored["ota_status"], stored["ota_campaign_id"]) == ("INSTALLING", "c1")
    # And an older (ts, seq), or the same ts with a lower seq, is refused and changes nothing
    older = replace(plain, last_ts=plain.last_ts - timedelta(seconds=1), last_seq=7, drive_state="driving")
    same_ts = replace(plain, last_seq=4, drive_state="driving")
    assert table.update_many([older, same_ts]) == (0, 2)
    assert table.get(plain.vin) == stored
    # Within DynamoDB's expression limit, which moto does not check
    assert sent and all(len(p["UpdateExpression"].encode()) <= MAX_EXPRESSION_BYTES for p in sent)


def test_an_update_with_an_ota_report_replaces_the_status_and_one_without_health_drops_the_counters(
    stack: LocalStack,
) -> None:
    now = datetime.now(UTC)
    table = DynamoVehicleStates(stack.clients.dynamodb, stack.resources.vehicles_table, clock=lambda: now)
    first = _reported(_state(now - timedelta(seconds=30)), 1, "DOWNLOADING", "c1")
    assert first.health is not None
    assert table.update(first, now)  # a vehicle never stored: the update creates it
    report = _reported(_state(now - timedelta(seconds=20)), 2, "SUCCEEDED", "c2")
    assert table.update(report, now)
    assert (table.get(first.vin) or {})["ota_status"] == "SUCCEEDED"

    without_health = replace(_state(now), last_seq=3, health=None)
    assert table.update(without_health, now)

    stored = table.get(first.vin) or {}
    assert (stored["last_seq"], stored["ota_status"], stored["ota_campaign_id"]) == (3, "SUCCEEDED", "c2")
    assert not {*HEALTH_ATTRIBUTES, "health_events"} & set(stored)  # as a whole-item put would leave it
