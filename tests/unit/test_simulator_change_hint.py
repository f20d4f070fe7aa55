"""Report by exception in the simulator: a vehicle flags ``changed`` by the platform's own rule,
against the last reading it flagged, with a keyframe every 6 hours."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from simulator_support import run_cli

from fleetota_core.domain.enrichment import ReleaseCatalog, StoredState, enrich, is_material
from fleetota_core.domain.telemetry import NetworkType, TelemetryRecord
from simulator.change_hint import KEYFRAME_S, changed
from simulator.fleet import generate_fleet
from simulator.record import encode

if TYPE_CHECKING:
    from pathlib import Path

    from simulator.vehicle import SimVehicle

T0 = 1_772_582_400.0  # 2026-03-04T00:00:00Z
KM_PER_DEG_LAT = 111.195  # the haversine's, on a 6,371 km sphere


@pytest.fixture
def v() -> SimVehicle:
    vehicle = generate_fleet(1, seed=4)[0]
    vehicle.driving = vehicle.charging = False
    vehicle.soc, vehicle.lat, vehicle.lon = 55.0, 37.7, -122.4
    vehicle.network = NetworkType.LTE
    return vehicle


def test_the_first_reading_after_start_is_a_change_and_an_unchanged_one_is_not(v: SimVehicle) -> None:
    assert changed(v, T0, ota_report=False)
    v.soc = 54.0  # same battery category
    assert not changed(v, T0 + 60, ota_report=False)


def test_moving_more_than_a_km_from_the_last_reported_position_is_a_change(v: SimVehicle) -> None:
    changed(v, T0, ota_report=False)
    v.lat += 0.6 / KM_PER_DEG_LAT
    assert not changed(v, T0 + 60, ota_report=False)
    v.lat += 0.5 / KM_PER_DEG_LAT  # 1.1 km from the last reading flagged changed, 0.5 from the previous
    assert changed(v, T0 + 120, ota_report=False)
    v.lat += 0.5 / KM_PER_DEG_LAT
    assert not changed(v, T0 + 180, ota_report=False)  # measured from the new reference


def test_a_new_battery_category_is_a_change(v: SimVehicle) -> None:
    changed(v, T0, ota_report=False)
    v.soc = 29.99
    assert changed(v, T0 + 60, ota_report=False)


@pytest.mark.parametrize(
    "change",
    [
        lambda v: setattr(v, "driving", True),
        lambda v: setattr(v, "charging", True),
        lambda v: setattr(v, "network", NetworkType.NONE),
        lambda v: setattr(v, "firmware_version", "9.9.9"),
        lambda v: setattr(v.health, "link_drops", v.health.link_drops + 1),
    ],
)
def test_each_other_material_attribute_is_a_change(v: SimVehicle, change) -> None:
    changed(v, T0, ota_report=False)
    change(v)
    assert changed(v, T0 + 60, ota_report=False)


def test_an_ota_report_is_a_change(v: SimVehicle) -> None:
    changed(v, T0, ota_report=False)
    assert changed(v, T0 + 60, ota_report=True)


def test_a_keyframe_at_least_every_6_hours_heals_a_lost_change(v: SimVehicle) -> None:
    changed(v, T0, ota_report=False)
    assert not changed(v, T0 + KEYFRAME_S - 1, ota_report=False)
    assert changed(v, T0 + KEYFRAME_S, ota_report=False)
    assert not changed(v, T0 + KEYFRAME_S + 60, ota_report=False)


def test_the_record_carries_the_flag_and_validates(v: SimVehicle) -> None:
    flagged = TelemetryRecord.model_validate_json(encode(v, T0, None, changed(v, T0, ota_report=False)))
    assert flagged.changed is True
    assert TelemetryRecord.model_validate_json(encode(v, T0 + 1, None, False)).changed is False
    assert '"changed"' not in encode(v, T0 + 2)  # an older client's record


def test_over_a_run_every_flag_agrees_with_the_processors_rule_against_the_last_flagged_reading(
    tmp_path: Path,
) -> None:
    run = run_cli(tmp_path, "--vehicles", "100", "--ticks", "30", "--interval", "60", "--seed", "5")
    reference: dict[str, StoredState] = {}
    flags = []
    for _, line in run.lines:  # each vehicle's readings in order (a held back one goes up first)
        record = TelemetryRecord.model_validate_json(line)
        before = reference.get(record.vin)
        # Fresh at the vehicle: judged as of the reading's own time, as the vehicle judges it.
        assert record.changed == is_material(record, before, record.ts), line
        if record.changed:
            reference[record.vin] = StoredState.of(enrich(record, ReleaseCatalog(), record.ts))
        flags.append(record.changed)
    assert len(reference) == 100 and flags.count(True) > 100 and flags.count(False) > 1000


def test_a_known_fleet_flags_only_real_changes_and_spreads_its_keyframes():
    import random
    import tempfile
    from pathlib import Path

    from simulator.change_hint import KEYFRAME_S, assume_reported, changed
    from simulator.fleet import generate_fleet
    from simulator.simulation import FleetSimulation
    from simulator.uploader import BatchUploader, DirectorySink

    fleet = generate_fleet(200, 5)
    assume_reported(fleet, random.Random(5))
    sink = DirectorySink(Path(tempfile.mkdtemp()))
    sim = FleetSimulation(fleet, BatchUploader(sink, 1000, "k"), start=1000.0, interval=10, seed=5)
    sim.step()  # the first readings (the network comes up): taken as already reported, not flagged
    assert all(v.reported is not None for v in fleet)
    assert not any(changed(v, 1010.0, False) for v in fleet)
    due = sorted(v.reported_at + KEYFRAME_S for v in fleet)
    assert due[-1] - due[0] > KEYFRAME_S / 2 and due[0] > 1000.0
    fleet[0].soc = 1.0  # a battery category change is still flagged
    assert changed(fleet[0], 1011.0, False)
