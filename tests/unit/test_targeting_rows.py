"""Targeting reads the fleet snapshot's rows: each row becomes the vehicle the campaign rules judge."""

from __future__ import annotations

from datetime import UTC, datetime

from fleetota_core.adapters.vehicle_directory import vehicle_from_row, with_registered_identity
from fleetota_core.domain.vehicle_identity import RegisteredIdentity
from fleetota_core.domain.vin import with_check_digit
from fleetota_core.services.ingest.fleet_health import snapshot_row

VIN = with_check_digit("5YJ3E1EA0PF000001")
NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def row(**overrides):
    return snapshot_row(
        {"make": "Tesla", "model": "Tesla Model 3", "model_year": 2023, "hw_rev": "HW4",
         "firmware_version": "1.0.0", "region": "eu-central", "metro": "Berlin", "last_ts": NOW,
         "last_seq": 7, "soc_pct": 55.0, "network": "LTE", "drive_state": "parked", **overrides}
    )  # fmt: skip


def test_a_snapshot_row_is_a_vehicle_in_its_metros_time_zone_with_its_reading():
    vehicle = vehicle_from_row(VIN, row())
    assert vehicle is not None
    assert (vehicle.vin, vehicle.timezone, vehicle.last_ts, vehicle.last_seq) == (
        VIN,
        "Europe/Berlin",
        NOW,
        7,
    )
    assert (vehicle.soc_pct, vehicle.speed_kph, vehicle.odometer_km) == (55.0, 0, 0)  # nulls: defaults
    assert vehicle_from_row(VIN, row(metro=None)).timezone == "UTC"


def test_a_row_without_a_firmware_version_is_no_vehicle_to_target():
    assert vehicle_from_row(VIN, row(firmware_version=None)) is None


def test_the_registry_identity_wins_over_the_snapshots():
    vehicle = vehicle_from_row(VIN, row())
    moved = RegisteredIdentity(VIN, "Tesla", "Tesla Model 3", 2023, "HW4", "eu-west", active=True)
    assert with_registered_identity(vehicle, moved).region == "eu-west"
    same = RegisteredIdentity(VIN, "Tesla", "Tesla Model 3", 2023, "HW4", "eu-central", active=True)
    assert with_registered_identity(vehicle, same) is vehicle


def test_a_row_whose_metro_is_not_text_is_judged_not_raised():
    # A snapshot is data from S3: one odd row must not stop a campaign's targeting.
    assert vehicle_from_row(VIN, row(metro=["Berlin"])) is None
    assert vehicle_from_row(VIN, {**row(), "metro": {"name": "Berlin"}}) is None
