"""TelemetryRecord: what a vehicle may send, and the schema published for vehicle makers."""

from __future__ import annotations

import copy

import pytest
from pydantic import ValidationError

from fleetota_core.cli.schema import SCHEMA_PATH, render_telemetry_schema
from fleetota_core.domain.telemetry import NetworkType, TelemetryRecord

GOOD = {
    "schema_version": 1,
    "vin": "1M8GDM9AXKP042788",
    "ts": "2026-11-26T08:15:00Z",
    "seq": 42,
    "model": "Model 3",
    "hw_rev": "HW4",
    "position": {"lat": 37.77, "lon": -122.41, "speed_kph": 0.0, "heading_deg": 90.0},
    "battery": {"soc_pct": 64.5, "voltage_v": 395.2, "temp_c": 21.0, "charging": False},
    "drive_state": "parked",
    "connectivity": {"network": "LTE", "signal_dbm": -85},
    "odometer_km": 12034.2,
    "firmware_version": "3.2.0",
}


def with_change(path: str, value: object) -> dict:
    record = copy.deepcopy(GOOD)
    *parents, leaf = path.split(".")
    target = record
    for key in parents:
        target = target[key]
    target[leaf] = value
    return record


def test_a_well_formed_reading_validates_and_is_online() -> None:
    record = TelemetryRecord.model_validate(GOOD)
    assert record.online
    assert record.connectivity.network is NetworkType.LTE


@pytest.mark.parametrize(
    ("path", "value", "complaint"),
    [
        ("vin", "1M8GDM9AXKP042789", "check digit"),
        ("vin", "1M8GDM9AXKP04278", "17"),
        ("vin", "IM8GDM9AXKP042788", "must not contain I"),
        ("ts", "2026-11-26T08:15:00", "timezone"),
        ("seq", -1, "greater than or equal"),
        ("battery.soc_pct", 130, "less than or equal to 100"),
        ("position.lat", 91, "less than or equal to 90"),
        ("connectivity.network", "6G", "5G"),
        ("firmware_version", "v3", "pattern"),
        ("drive_state", "flying", "driving"),
    ],
)
def test_an_impossible_reading_is_rejected_with_the_rule_it_breaks(
    path: str, value: object, complaint: str
) -> None:
    with pytest.raises(ValidationError) as exc:
        TelemetryRecord.model_validate(with_change(path, value))
    assert complaint in str(exc.value)


def test_unknown_fields_are_rejected_so_schema_drift_is_caught() -> None:
    with pytest.raises(ValidationError, match="Extra inputs"):
        TelemetryRecord.model_validate({**GOOD, "speed": 3})


def test_the_published_json_schema_is_generated_from_the_model() -> None:
    assert SCHEMA_PATH.read_text() == render_telemetry_schema(), (
        "docs/telemetry.schema.json is stale: run `python -m fleetota_core schema --write`"
    )
