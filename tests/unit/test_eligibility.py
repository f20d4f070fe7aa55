"""Eligibility from live telemetry; deferrals say which rule failed."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

from fleetota_core.domain.eligibility import Deferred, EligibilityRules, Eligible, MaintenanceWindow, evaluate
from fleetota_core.domain.telemetry import DriveState, NetworkType
from fleetota_core.domain.vehicle import Vehicle
from fleetota_core.domain.vin import with_check_digit

VIN = with_check_digit("5YJ3E1EA0PF000001")
NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)  # a Thursday


def vehicle(**kw) -> Vehicle:
    base = {
        "vin": VIN,
        "make": "Tesla",
        "model": "Model 3",
        "model_year": 2023,
        "hw_rev": "HW4",
        "firmware_version": "1.0.0",
        "timezone": "America/Los_Angeles",
        "last_ts": NOW,
        "soc_pct": 80.0,
        "drive_state": DriveState.PARKED,
        "network": NetworkType.LTE,
        "signal_dbm": -80,
        "online": True,
    }
    return Vehicle(**{**base, **kw})


def test_a_parked_well_charged_connected_vehicle_is_eligible():
    assert isinstance(evaluate(vehicle(), EligibilityRules(), NOW), Eligible)


def test_low_battery_defers_with_the_numbers_in_the_reason():
    assert evaluate(vehicle(soc_pct=18.0), EligibilityRules(), NOW) == Deferred("battery 18% < 30%")


def test_charging_overrides_a_low_battery_unless_the_rules_say_otherwise():
    low_charging = vehicle(soc_pct=18.0, charging=True, drive_state=DriveState.CHARGING)
    assert isinstance(evaluate(low_charging, EligibilityRules(), NOW), Eligible)
    strict = EligibilityRules(charging_overrides_soc=False)
    assert evaluate(low_charging, strict, NOW).reason == "battery 18% < 30%"


def test_a_driving_vehicle_is_deferred():
    verdict = evaluate(vehicle(drive_state=DriveState.DRIVING, speed_kph=72.4), EligibilityRules(), NOW)
    assert verdict == Deferred("driving at 72 km/h")


def test_network_and_signal_rules():
    assert evaluate(vehicle(network=NetworkType.G3), EligibilityRules(), NOW).reason.startswith("network 3G")
    weak = evaluate(vehicle(signal_dbm=-120), EligibilityRules(), NOW)
    assert weak == Deferred("signal -120 dBm < -110 dBm")
    offline = vehicle(online=False, network=NetworkType.NONE)
    assert evaluate(offline, EligibilityRules(), NOW) == Deferred("offline (last reading 0 min ago)")
    silent = vehicle(last_ts=NOW - timedelta(minutes=20))
    assert evaluate(silent, EligibilityRules(), NOW) == Deferred("offline (last reading 20 min ago)")
    assert evaluate(None, EligibilityRules(), NOW) == Deferred("no telemetry yet")


def test_maintenance_windows_use_the_vehicles_local_time_zone():
    # 12:00 UTC is 04:00 in Los Angeles and 13:00 in Berlin.
    night = EligibilityRules(maintenance_windows=(MaintenanceWindow(start=time(1), end=time(5)),))
    assert isinstance(evaluate(vehicle(), night, NOW), Eligible)
    verdict = evaluate(vehicle(timezone="Europe/Berlin"), night, NOW)
    assert verdict == Deferred("outside maintenance window 01:00-05:00 (local Thu 13:00)")


def test_a_window_past_midnight_belongs_to_the_day_it_starts():
    window = MaintenanceWindow(start=time(22), end=time(2), days=("wed",))
    assert window.contains(datetime(2026, 11, 26, 1, 0))  # Thursday 01:00, the Wednesday window
    assert not window.contains(datetime(2026, 11, 27, 1, 0))  # Friday 01:00
    assert window.contains(datetime(2026, 11, 25, 23, 0))  # Wednesday 23:00
