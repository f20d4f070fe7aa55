"""Vehicles move, charge and connect like real cars over two simulated days."""

from __future__ import annotations

import itertools
import math
from collections import Counter
from datetime import datetime

import pytest
from simulator_support import MemorySink

from fleetota_core.domain.geography import in_land_zone
from simulator.catalogue import LATEST_FIRMWARE
from simulator.environment import conditions
from simulator.fleet import generate_fleet
from simulator.simulation import FleetSimulation
from simulator.uploader import BatchUploader

INTERVAL = 300.0
START = datetime.fromisoformat("2026-03-03T00:00:00+00:00").timestamp()  # a Tuesday


@pytest.fixture(scope="module")
def two_days() -> tuple[list, list[dict]]:
    fleet = generate_fleet(100, seed=11)
    sink = MemorySink()
    sim = FleetSimulation(fleet, BatchUploader(sink, 5000, "test"), start=START, interval=INTERVAL, seed=11)
    for _ in range(int(48 * 3600 / INTERVAL)):
        sim.step()
    return fleet, [record for _, record in sink.records()]


def _local_hour(vehicle: object, record: dict) -> float:
    t = datetime.fromisoformat(record["ts"]).timestamp()
    cond = conditions(vehicle.metro.name, vehicle.metro.timezone, t)  # type: ignore[attr-defined]
    return cond.local_seconds(t) / 3600


def test_the_fleet_mixes_models_hardware_metros_and_an_older_firmware_tail() -> None:
    fleet = generate_fleet(2000, seed=1)
    assert len({v.model for v in fleet}) >= 8
    assert len({(v.model, v.hw_rev) for v in fleet}) >= 12
    assert len({v.metro.timezone for v in fleet}) >= 5
    assert len({v.battery_kwh for v in fleet}) >= 5
    firmware = Counter(v.firmware_version for v in fleet)
    assert firmware.most_common(1)[0][0] == LATEST_FIRMWARE
    old_tail = sum(n for version, n in firmware.items() if version.startswith("2."))
    assert 0.03 * 2000 < old_tail < 0.25 * 2000


def test_vehicles_are_parked_most_of_the_day_and_drive_at_road_speeds(two_days: tuple) -> None:
    _, records = two_days
    states = Counter(r["drive_state"] for r in records)
    assert 0.02 < states["driving"] / len(records) < 0.2
    speeds = [r["position"]["speed_kph"] for r in records if r["drive_state"] == "driving"]
    assert min(speeds) >= 15 and max(speeds) <= 130
    assert 30 <= sorted(speeds)[len(speeds) // 2] <= 80
    assert all(r["position"]["speed_kph"] == 0 for r in records if r["drive_state"] != "driving")


def test_more_vehicles_drive_at_the_morning_rush_than_at_night(two_days: tuple) -> None:
    fleet, records = two_days
    by_vin = {v.vin: v for v in fleet}
    rush = night = 0
    for r in records:
        if r["drive_state"] == "driving":
            hour = _local_hour(by_vin[r["vin"]], r)
            rush += 7 <= hour < 9
            night += 1 <= hour < 5
    assert rush > 10 * max(night, 1)


def test_charging_happens_mostly_in_the_evening_and_night_at_home_or_depot(two_days: tuple) -> None:
    fleet, records = two_days
    by_vin = {v.vin: v for v in fleet}
    charging = [r for r in records if r["drive_state"] == "charging"]
    assert charging
    assert all(r["battery"]["charging"] for r in charging)
    night = [r for r in charging if not 7 <= _local_hour(by_vin[r["vin"]], r) < 16]
    assert len(night) / len(charging) > 0.7


def test_battery_drains_with_distance_and_some_vehicles_run_low(two_days: tuple) -> None:
    _, records = two_days
    by_vin: dict[str, list[dict]] = {}
    for r in records:
        by_vin.setdefault(r["vin"], []).append(r)
    drained = 0
    for rows in by_vin.values():
        rows.sort(key=lambda r: r["seq"])
        for a, b in itertools.pairwise(rows):
            if b["seq"] == a["seq"] + 1 and a["drive_state"] == b["drive_state"] == "driving":
                assert b["battery"]["soc_pct"] < a["battery"]["soc_pct"]
                assert b["odometer_km"] > a["odometer_km"]
                drained += 1
    assert drained > 100
    assert any(r["battery"]["soc_pct"] < 20 for r in records)


def test_position_speed_and_heading_agree_between_readings(two_days: tuple) -> None:
    fleet, records = two_days
    kx = {v.vin: v.kx for v in fleet}
    rows: dict[str, list[dict]] = {}
    for r in records:
        rows.setdefault(r["vin"], []).append(r)
    checked = 0
    for vin, rs in rows.items():
        rs.sort(key=lambda r: r["seq"])
        for a, b in itertools.pairwise(rs):
            pa, pb = a["position"], b["position"]
            dy, dx = (pb["lat"] - pa["lat"]) * 110.574, (pb["lon"] - pa["lon"]) * kx[vin]
            km = math.hypot(dx, dy)
            assert km <= 130 * INTERVAL / 3600, (vin, a["seq"])  # never faster than a car
            # However it went, the road travelled is at least the straight-line displacement.
            assert b["odometer_km"] - a["odometer_km"] >= km * 0.99 - 0.002, (vin, a["seq"])
            if a["drive_state"] == b["drive_state"] == "driving" and pa["heading_deg"] == pb["heading_deg"]:
                # Same leg for the whole interval: distance is speed x time, direction is the heading.
                assert km == pytest.approx(pb["speed_kph"] * INTERVAL / 3600, rel=0.02, abs=0.02)
                if km > 0.1:
                    bearing = math.degrees(math.atan2(dx, dy)) % 360
                    assert abs((bearing - pb["heading_deg"] + 180) % 360 - 180) < 1.5
                checked += 1
    assert checked > 50


def test_every_position_is_inside_its_metros_land_zones(two_days: tuple) -> None:
    fleet, records = two_days
    metro = {v.vin: v.metro.name for v in fleet}
    assert all(in_land_zone(metro[r["vin"]], r["position"]["lat"], r["position"]["lon"]) for r in records)


def test_connectivity_mixes_wifi_cellular_and_gaps(two_days: tuple) -> None:
    _, records = two_days
    networks = Counter(r["connectivity"]["network"] for r in records)
    assert {"WIFI", "LTE", "5G"} <= set(networks)
    assert all(
        (r["connectivity"]["signal_dbm"] is None) == (r["connectivity"]["network"] == "NONE") for r in records
    )
