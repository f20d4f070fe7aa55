"""Creation's targeting reads snapshot rows without building a Vehicle, and still takes exactly the rows
the Vehicle model takes, with the same identity and version; why_not is judged once per combination."""

from __future__ import annotations

import itertools
import random
from datetime import UTC, datetime
from typing import Any

from fleetota_core.adapters.fleet_snapshot import ROW_COLUMNS
from fleetota_core.adapters.snapshot_row_check import is_plain_vehicle
from fleetota_core.adapters.vehicle_directory import candidate, candidate_from_row, vehicle_from_row
from fleetota_core.domain.campaign import CampaignSpec, TargetFilter
from fleetota_core.domain.enrolment import why_not, why_not_for
from fleetota_core.domain.firmware import FirmwareManifest, FirmwareRelease
from fleetota_core.domain.vin import with_check_digit
from fleetota_core.services.ingest.fleet_health import snapshot_row

VIN = with_check_digit("5YJ3E1EA0PF000001")
NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
# Values a row may hold, good and bad: types, bounds, formats, what JSON can carry.
ODD = [None, True, False, 0, 1, -1, -80, 1979, 1980, 2039, 2040, 2**53, 2**70, -(2**70), 0.0, -80.0, 1.5,
       2023.0, float("nan"), float("inf"), 1e300, "", "x", "Škoda", "\ud800", "1.0.0", "01.0.0", "1.0",
       "2.0.0-rc.1", "\u0661.0.0", "parked", "PARKED", "LTE", "lte", "NONE", "5G", "Berlin",
       "2026-11-30T11:58:00.000000Z", "2026-11-31T11:58:00.000000Z", "2026-11-30T24:00:00.000000Z",
       "2026-11-30T11:58:00Z", "2026-11-30T11:58:00.000000+00:00", "0000-01-01T00:00:00.000000Z",
       "\u0662\u0660\u0662\u0666-11-30T11:58:00.000000Z", "2026-11-30 11:58:00.000000Z", [], {},
       ["LTE"]]  # fmt: skip


def row(**overrides: Any) -> dict[str, Any]:
    return snapshot_row(
        {"make": "Tesla", "model": "Tesla Model 3", "model_year": 2023, "hw_rev": "HW4",
         "firmware_version": "1.0.0", "region": "eu-central", "metro": "Berlin", "last_ts": NOW,
         "last_seq": 7, "soc_pct": 55.0, "network": "LTE", "drive_state": "parked", "signal_dbm": -80,
         "health_observed_s": 3600.0, "health_dtc": 0, "health_reboots": 1, "health_link_drops": 2,
         "health_parked_s": 60.0, "health_parked_drain": 0.1, **overrides}
    )  # fmt: skip


def same_as_the_model(vin: str, values: dict[str, Any]) -> bool:
    vehicle = vehicle_from_row(vin, values)
    if is_plain_vehicle(vin, values) and vehicle is None:
        return False  # the fast path took a row the model refuses
    return candidate_from_row(vin, values) == (None if vehicle is None else candidate(vehicle))


def test_rows_as_the_snapshot_writes_them_take_the_fast_path() -> None:
    rows = [
        row(),
        row(region=None, metro=None, last_ts=None),
        row(soc_pct=None, network=None, drive_state=None),
        row(firmware_version="2.0.0-rc.1", signal_dbm=-113.0, lat=37.5, lon=-122.1),
    ]
    for values in rows:
        assert is_plain_vehicle(VIN, values)
        assert candidate_from_row(VIN, values) == candidate(vehicle_from_row(VIN, values))  # type: ignore[arg-type]
    assert candidate_from_row(VIN, rows[1]).region == "unknown"  # type: ignore[union-attr]


def test_every_column_set_to_every_odd_value_is_judged_as_the_vehicle_model_judges_it() -> None:
    base = row()
    taken = 0
    for column, value in itertools.product(ROW_COLUMNS, ODD):
        values = {**base, column: value}
        assert same_as_the_model(VIN, values), (column, value)
        taken += is_plain_vehicle(VIN, values)
    assert taken > 200  # many odd rows still take the fast path: the check is not simply "no"


def test_random_pairs_of_odd_values_and_broken_vins_are_judged_as_the_model_judges_them() -> None:
    rng = random.Random(16)
    base = row()
    vins = [
        VIN,
        VIN.lower(),
        VIN[:16],
        VIN[:8] + "0" + VIN[9:],
        VIN.replace("F", "I"),
        VIN[:9] + "U" + VIN[10:],
    ]
    for _ in range(3000):
        values = {**base, rng.choice(ROW_COLUMNS): rng.choice(ODD), rng.choice(ROW_COLUMNS): rng.choice(ODD)}
        assert same_as_the_model(rng.choice(vins), values), values
    for column in ROW_COLUMNS:  # a row of another shape: a column missing, or more of them
        values = {k: v for k, v in base.items() if k != column}
        assert same_as_the_model(VIN, values) and same_as_the_model(VIN, {**values, column: None})
    for extra in ({"timezone": "Asia/Tokyo"}, {"vin": "x"}, {"make_v2": 1}, {"timezone": ["x"]}):
        assert same_as_the_model(VIN, {**base, **extra}), extra


def test_why_not_for_a_campaign_answers_as_why_not_for_every_vehicle() -> None:
    manifest = FirmwareManifest(
        version="2.0.0", sha256="0" * 64, size_bytes=1, models=("M3", "MY"), hw_revs=("HW3", "HW4"),
        min_from_version="1.0.0", artifact_key="releases/2.0.0/image.bin", created_at=NOW, created_by="t",
    )  # fmt: skip
    release = FirmwareRelease(manifest=manifest, signature="", key_id="")
    vins = [with_check_digit(f"5YJ3E1EA0PF{n:06d}") for n in range(4)]
    filters = [
        TargetFilter(),
        TargetFilter(models=("M3",), regions=("eu",)),
        TargetFilter(vins=tuple(vins[:2])),
        TargetFilter(current_versions=("1.0.0", "3.0.0"), hw_revs=("HW4",)),
    ]
    values = itertools.product(vins, ("M3", "MY", "MS", None), ("HW3", "HW4", None), ("eu", "us", None),
                               ("1.0.0", "0.9.0", "2.0.0", "3.0.0", "bad", None))  # fmt: skip
    cases = list(values)
    for target, kind in itertools.product(filters, ("update", "rollback")):
        spec = CampaignSpec(name="t", release_version="2.0.0", target=target, kind=kind)
        check = why_not_for(spec, release)
        assert [check(*c) for c in cases] == [why_not(spec, release, *c) for c in cases]
