"""Issue #16: the vehicles table takes material changes only; "last seen" travels through the fleet
snapshot, and the update manager's eligibility still sees a parked car that keeps reporting as online."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from fleetota_core.adapters.fleet_shard_rows import SnapshotLastSeen
from fleetota_core.adapters.vehicle_state import DynamoVehicleStates
from fleetota_core.composition import campaign_ports
from fleetota_core.domain.eligibility import EligibilityRules, Eligible, evaluate
from fleetota_core.domain.telemetry import NetworkType
from fleetota_core.services.ingest.fleet_health import refresh_fleet
from fleetota_core.services.ingest.stats import telemetry_stats
from simulator.record import encode
from tests.integration.test_pipeline import _fleet_lines, _put

if TYPE_CHECKING:
    from tests.integration.conftest import LocalStack


def test_a_parked_car_reporting_without_change_costs_no_table_write_and_stays_online(stack: LocalStack):
    # 100 s ago the car parked and reported (material: first sight) ...
    start = time.time() - 100
    fleet, _ = _fleet_lines(stack, 1, start)
    car = fleet[0]
    car.speed_kph, car.driving, car.charging, car.soc = 0.0, False, False, 80.0
    car.network, car.signal_dbm = NetworkType.WIFI, -60
    _put(stack, 1, [encode(car, start).encode()])
    stack.runtime.drain(timeout=30)
    table = DynamoVehicleStates(stack.clients.dynamodb, stack.resources.vehicles_table)
    first = table.get(car.vin)
    # ... then, every 10 s since, the same reading from the same place: nothing material.
    readings = []
    for step in range(1, 10):
        car.seq += 1
        readings.append(encode(car, start + 10 * step).encode())
    _put(stack, 2, readings)
    stack.runtime.drain(timeout=30)

    # The table still holds the first reading: no heartbeat write.
    assert table.get(car.vin)["last_seq"] == first["last_seq"]
    stats = telemetry_stats(stack.clients, stack.resources)
    assert stats["received"] == stats["stored"] == 10
    # The snapshot's refresh (what the update manager runs each tick), 31 s on so the delta has
    # settled, folds the newest reading in.
    rows = refresh_fleet(stack.clients, stack.resources, now=datetime.now(UTC) + timedelta(seconds=31)).rows
    assert rows[car.vin]["last_seq"] == car.seq
    assert rows[car.vin]["online"] is True

    # Four minutes on, eligibility reads through the campaign ports: last seen 4 min 10 s ago, so
    # online by the 5-minute rule, though the table's reading is 5 min 40 s old.
    now = datetime.now(UTC) + timedelta(minutes=4)
    rules = EligibilityRules(offline_after=timedelta(minutes=5))  # the fleet's offline rule
    directory = campaign_ports(stack.clients, stack.resources).vehicles
    vehicle = directory.get_many([car.vin])[car.vin]
    assert vehicle.last_seq == car.seq
    assert isinstance(evaluate(vehicle, rules, now), Eligible)
    # Without the snapshot (the previous design's table alone) the same car would be judged offline.
    stale = campaign_ports(stack.clients, stack.resources, last_seen=lambda: {}).vehicles
    verdict = evaluate(stale.get_many([car.vin])[car.vin], rules, now)
    assert not isinstance(verdict, Eligible) and "offline" in verdict.reason
    assert SnapshotLastSeen(stack.clients, stack.resources)()[car.vin]["last_seq"] == car.seq


def test_the_full_rebuild_keeps_the_fresher_last_seen_of_the_previous_snapshot(stack: LocalStack):
    start = time.time() - 300
    fleet, lines = _fleet_lines(stack, 3, start, seed=5)
    _put(stack, 1, lines)
    stack.runtime.drain(timeout=30)
    later = []
    for car in fleet:
        car.seq += 1
        later.append(encode(car, start + 240).encode())
    _put(stack, 2, later)
    stack.runtime.drain(timeout=30)
    now = datetime.now(UTC) + timedelta(seconds=31)
    refresh_fleet(stack.clients, stack.resources, now=now)
    # 31 minutes on, the rebuild scans the table (older readings) but keeps the snapshot's newer ones.
    rows = refresh_fleet(stack.clients, stack.resources, now=now + timedelta(minutes=31)).rows
    assert {vin: row["last_seq"] for vin, row in rows.items()} == {car.vin: car.seq for car in fleet}


def test_a_long_lived_last_seen_source_reads_the_snapshot_again_once_it_is_older_than_its_age(
    stack: LocalStack,
):
    # The dashboard keeps its campaign ports for the server's lifetime: its previews must not judge
    # eligibility by the snapshot it read first.
    start = time.time() - 60
    fleet, lines = _fleet_lines(stack, 2, start, seed=9)
    _put(stack, 1, lines)
    stack.runtime.drain(timeout=30)
    clock = [0.0]
    source = SnapshotLastSeen(stack.clients, stack.resources, max_age_s=10, clock=lambda: clock[0])
    assert source() == {}  # no snapshot yet
    refresh_fleet(stack.clients, stack.resources, now=datetime.now(UTC) + timedelta(seconds=31))
    clock[0] = 5.0
    assert source() == {}  # still within its age
    clock[0] = 11.0
    assert set(source()) == {car.vin for car in fleet}
