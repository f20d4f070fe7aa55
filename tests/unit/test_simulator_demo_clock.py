"""The simulator's demo knobs: wall-clock readings under time compression, fleet share, fleet file."""

from __future__ import annotations

import json

from simulator.fleet import generate_fleet, write_fleet_file
from simulator.simulation import FleetSimulation
from simulator.uploader import BatchUploader
from simulator.vehicle import Role


class Collect:
    def __init__(self) -> None:
        self.keys: list[str] = []

    def put_batch(self, key: str, body: bytes) -> None:
        self.keys.append(key)


def test_with_a_stamp_readings_carry_wall_time_while_the_vehicles_live_simulated_time():
    # Given a run 60x faster whose wall clock starts a day after its simulated clock
    start, wall0, speed = 1_767_600_000.0, 1_767_686_400.0, 60.0
    sink = Collect()
    sim = FleetSimulation(
        generate_fleet(3, 5), BatchUploader(sink, 1000, "run"), start=start, interval=60.0, seed=5,
        stamp=lambda t: wall0 + (t - start) / speed,
    )  # fmt: skip

    # When an hour of simulated time passes
    for _ in range(60):
        sim.step()

    # Then the simulated clock moved an hour, while the batches are keyed by one wall minute
    assert sim.t == start + 3600
    assert sim.stamp(sim.t) == wall0 + 60
    assert all(key.startswith("raw/dt=2026-01-06/hour=08/") for key in sink.keys)


def test_the_fleet_share_sets_how_many_vehicles_are_depot_based_and_keeps_the_default_fleet():
    default = generate_fleet(200, 9)
    busy = generate_fleet(200, 9, fleet_share=0.8)

    assert [v.vin for v in generate_fleet(200, 9, fleet_share=0.3)] == [v.vin for v in default]
    share = sum(v.role is Role.FLEET for v in busy) / len(busy)
    assert 0.7 < share < 0.9


def test_the_fleet_file_lists_every_provisioned_vehicle(tmp_path):
    fleet = generate_fleet(4, 2)
    path = tmp_path / "state" / "fleet.json"

    write_fleet_file(path, fleet, seed=2)

    data = json.loads(path.read_text())
    assert data["seed"] == 2
    assert [v["vin"] for v in data["vehicles"]] == [v.vin for v in fleet]
    assert set(data["vehicles"][0]) >= {"vin", "model", "hw_rev", "firmware_version", "region"}
