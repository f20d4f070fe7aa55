"""Store and forward: offline vehicles keep their readings and upload them late, losing none."""

from __future__ import annotations

import itertools
from datetime import datetime

import pytest
from simulator_support import MemorySink, run_cli

from simulator.fleet import generate_fleet
from simulator.simulation import FaultProfile, FleetSimulation
from simulator.uploader import BatchUploader

INTERVAL = 60.0
TICKS = 90
VEHICLES = 80


@pytest.fixture(scope="module")
def outage_run() -> tuple[FleetSimulation, MemorySink]:
    sink = MemorySink()
    sim = FleetSimulation(
        generate_fleet(VEHICLES, seed=9),
        BatchUploader(sink, 500, "offline"),
        start=datetime.fromisoformat("2026-05-12T14:00:00+00:00").timestamp(),
        interval=INTERVAL,
        seed=9,
        faults=FaultProfile(offline_rate=0.3, outage_minutes=10),
    )
    for _ in range(TICKS):
        sim.step()
    return sim, sink


def _upload_time(key: str) -> float:
    stamp = key.rsplit("/", 1)[1].split("-", 1)[0]
    return datetime.strptime(stamp + "+0000", "%Y%m%dT%H%M%SZ%z").timestamp()


def test_no_reading_is_lost_sent_plus_held_is_everything(outage_run: tuple) -> None:
    sim, sink = outage_run
    records = [r for _, r in sink.records()]
    assert sim.dropped == 0
    assert len(records) + sim.held == VEHICLES * TICKS
    sent = {(r["vin"], r["seq"]) for r in records}
    assert len(sent) == len(records)
    for v in sim.vehicles:
        held = [int(line.split('"seq":', 1)[1].split(",", 1)[0]) for line in v.outbox]
        mine = sorted(seq for vin, seq in sent if vin == v.vin) + held
        assert mine == list(range(TICKS)), v.vin  # every seq exactly once: sent, or still held


def test_late_readings_arrive_after_reconnection_with_the_reconnecting_reading(outage_run: tuple) -> None:
    _, sink = outage_run
    records = sink.records()
    newest: dict[tuple[int, str], dict] = {}
    for index, record in records:
        current = newest.get((index, record["vin"]))
        if current is None or record["seq"] > current["seq"]:
            newest[(index, record["vin"])] = record
    late = 0
    for index, record in records:
        age = _upload_time(sink.objects[index][0]) - datetime.fromisoformat(record["ts"]).timestamp()
        if age > INTERVAL:
            late += 1
            assert record["connectivity"]["network"] == "NONE"  # it was taken while offline
            # The same object carries the vehicle's newest reading, taken online: the reconnection.
            assert newest[(index, record["vin"])]["connectivity"]["network"] != "NONE"
    assert late >= 100


def test_late_uploads_make_arrival_order_differ_from_reading_order(outage_run: tuple) -> None:
    _, sink = outage_run
    arrival = [datetime.fromisoformat(r["ts"]).timestamp() for _, r in sink.records()]
    out_of_order = sum(1 for a, b in itertools.pairwise(arrival) if b < a - INTERVAL)
    assert out_of_order > 10


def test_without_outages_almost_nothing_is_late(tmp_path: object) -> None:
    # Guards the previous tests: lateness comes from the fault, not from the batching itself.
    run = run_cli(tmp_path, "--vehicles", "80", "--ticks", "30", "--seed", "9")  # type: ignore[arg-type]
    late = sum(
        1
        for key, line in run.lines
        if _upload_time(key) - datetime.fromisoformat(line.split('"ts":"', 1)[1][:24]).timestamp() > INTERVAL
    )
    assert late < 0.05 * len(run.lines)


def test_offline_rate_from_the_command_line_holds_and_later_sends_readings(tmp_path: object) -> None:
    run = run_cli(tmp_path, "--vehicles", "50", "--ticks", "40", "--seed", "4", "--offline-rate", "0.4")  # type: ignore[arg-type]
    assert run.sent + run.held == 50 * 40
    assert run.held > 0
