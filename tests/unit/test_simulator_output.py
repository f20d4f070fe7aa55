"""The simulator's --out output: deterministic, schema-valid, complete, and on land in the metros."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from simulator_support import KEY_PATTERN, Run, in_water, run_cli

from fleetota_core.domain.geography import METRO_BY_NAME, nearest_metro
from fleetota_core.domain.telemetry import TelemetryRecord

if TYPE_CHECKING:
    from pathlib import Path


def _tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_the_same_seed_gives_byte_identical_output(tmp_path: Path) -> None:
    run_cli(tmp_path / "a", "--vehicles", "60", "--ticks", "5", "--seed", "42")
    run_cli(tmp_path / "b", "--vehicles", "60", "--ticks", "5", "--seed", "42")
    a, b = _tree(tmp_path / "a"), _tree(tmp_path / "b")
    assert a and a == b


def test_a_different_seed_gives_different_output(tmp_path: Path) -> None:
    run_cli(tmp_path / "a", "--vehicles", "60", "--ticks", "5", "--seed", "42")
    run_cli(tmp_path / "b", "--vehicles", "60", "--ticks", "5", "--seed", "43")
    assert _tree(tmp_path / "a") != _tree(tmp_path / "b")


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    return run_cli(tmp_path_factory.mktemp("fleet"), "--vehicles", "100", "--ticks", "10", "--seed", "3")


class TestHundredVehiclesTenTicks:
    def test_every_record_validates_against_the_telemetry_record_model(self, run: Run) -> None:
        for _, line in run.lines:
            TelemetryRecord.model_validate_json(line)

    def test_records_sent_plus_records_still_buffered_equal_vehicles_times_ticks(self, run: Run) -> None:
        assert run.generated == 100 * 10
        assert len(run.lines) == run.sent
        assert run.sent + run.held == 1000
        assert run.dropped == 0
        assert len({(r["vin"], r["seq"]) for r in run.records()}) == run.sent  # no duplicates

    def test_objects_are_gzip_ndjson_under_the_raw_date_hour_layout(self, run: Run) -> None:
        assert run.keys
        assert all(KEY_PATTERN.match(key) for key in run.keys)

    def test_seq_increases_per_vehicle_from_zero(self, run: Run) -> None:
        seqs: dict[str, list[int]] = {}
        for record in run.records():
            seqs.setdefault(record["vin"], []).append(record["seq"])
        assert len(seqs) >= 95  # a few may still be offline (underground garage, no coverage)
        for values in seqs.values():
            assert sorted(values) == list(range(len(values)))

    def test_no_vehicle_is_far_from_its_metro_or_in_water(self, run: Run) -> None:
        for record in run.records():
            lat, lon = record["position"]["lat"], record["position"]["lon"]
            metro = nearest_metro(lat, lon, max_km=100)
            assert metro is not None, (lat, lon)
            south, west, north, east = METRO_BY_NAME[metro.name].bbox
            assert south <= lat <= north and west <= lon <= east, (metro.name, lat, lon)
            assert not in_water(lat, lon), (lat, lon)
