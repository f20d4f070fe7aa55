"""One vehicle's physics: charging heats the pack and fills it, driving drains by distance."""

from __future__ import annotations

import random
from typing import TYPE_CHECKING

from simulator.environment import Conditions
from simulator.fleet import generate_fleet
from simulator.sites import Site, SiteKind

if TYPE_CHECKING:
    from simulator.vehicle import SimVehicle

COLD_NIGHT = Conditions(utc_offset_s=0.0, ambient_c=2.0)
T0 = 1_772_582_400.0  # 2026-03-04T00:00:00Z, a Wednesday


def _vehicle(soc: float) -> SimVehicle:
    vehicle = generate_fleet(1, seed=4)[0]
    vehicle.soc = soc
    return vehicle


def test_dc_fast_charging_fills_the_battery_and_warms_the_pack() -> None:
    v = _vehicle(soc=15.0)
    charger = Site(SiteKind.CHARGER, v.home.lat, v.home.lon, charger_kw=150.0)
    v.start(T0, charger, COLD_NIGHT, random.Random(1))
    v.advance(T0 + 20 * 60, COLD_NIGHT, random.Random(1))
    assert v.charging and not v.driving
    assert v.soc > 35.0
    assert v.temp_c > COLD_NIGHT.ambient_c + 8


def test_a_parked_unplugged_pack_cools_to_the_air_temperature() -> None:
    v = _vehicle(soc=60.0)
    street = Site(SiteKind.STOP, v.home.lat, v.home.lon)
    v.start(T0, street, Conditions(0.0, 30.0), random.Random(1))
    v.hold_parked = True  # stays put however long its errand would have been
    v.advance(T0 + 6 * 3600, COLD_NIGHT, random.Random(1))
    assert abs(v.temp_c - COLD_NIGHT.ambient_c) < 1.0
    # Parked and unplugged, it loses only the vampire drain: a few tenths of a point in six hours.
    assert 59.0 < v.soc < 60.0 and not v.charging
    assert v.health.parked_s == 6 * 3600
    assert v.health.parked_drain_pct == 60.0 - v.soc


def test_driving_drains_the_battery_in_proportion_to_distance_and_consumption() -> None:
    v = _vehicle(soc=80.0)
    far = Site(SiteKind.STOP, v.home.lat + 0.1, v.home.lon)  # about 11 km north
    v.start(T0, v.home, COLD_NIGHT, random.Random(1))
    v.next_dest, v.depart_at = far, T0
    v.advance(T0 + 5 * 60, COLD_NIGHT, random.Random(2))
    assert v.driving and v.speed_kph > 20
    km = v.odometer_km - generate_fleet(1, seed=4)[0].odometer_km
    expected_pct = km * v.wh_per_km / 1000 / v.battery_kwh * 100
    # Cold air costs more than the catalogue figure, never less, and never more than double.
    assert expected_pct < 80.0 - v.soc < 2 * expected_pct
    assert abs(v.heading) < 1.0 or abs(v.heading - 360) < 1.0  # heading north
