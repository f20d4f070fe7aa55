"""Store and forward: offline vehicles keep their readings and upload them late, losing none."""

from __future__ import annotations

import gzip
import itertools
import json
from datetime import datetime

import pytest
from botocore.exceptions import EndpointConnectionError
from cryptography.hazmat.primitives.asymmetric import ec
from simulator_support import MemorySink, run_cli

from fleetota_core.adapters.telemetry_store import TelemetryStore
from fleetota_core.domain.job_document import TrustedKeys
from fleetota_core.errors import BackendUnavailableError
from simulator.__main__ import summary
from simulator.fleet import generate_fleet
from simulator.job_listener import JobListener
from simulator.ota_client import VehicleOtaClient
from simulator.simulation import FaultProfile, FleetSimulation
from simulator.uploader import BatchUploader, S3Sink

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


class _S3GoesAway:
    """A boto3-shaped S3 client that refuses connections (botocore's EndpointConnectionError) while
    ``down``, as when the endpoint stops, and stores objects otherwise."""

    def __init__(self) -> None:
        self.down = False
        self.objects: list[tuple[str, bytes]] = []

    def put_object(self, Bucket: str, Key: str, Body: bytes, **kwargs: object) -> None:
        if self.down:
            raise EndpointConnectionError(endpoint_url="http://127.0.0.1:4603/")
        self.objects.append((Key, Body))


def _seqs(lines: list[str]) -> list[int]:
    return [int(line.split('"seq":', 1)[1].split(",", 1)[0]) for line in lines]


def test_vehicles_hold_readings_while_the_endpoint_is_away_drop_the_oldest_and_upload_the_rest_later() -> (
    None
):
    # Given 30 vehicles uploading through the real S3 adapter, each keeping at most 5 readings
    s3 = _S3GoesAway()
    uploader = BatchUploader(S3Sink(TelemetryStore("telemetry", s3)), 500, "away")
    fleet = generate_fleet(30, seed=21)
    start = datetime.fromisoformat("2026-05-12T14:00:00+00:00").timestamp()
    sim = FleetSimulation(fleet, uploader, start=start, interval=INTERVAL, seed=21, outbox_size=5)
    # When the endpoint goes away for 8 ticks and comes back
    for tick in range(30):
        s3.down = 3 <= tick < 11
        sim.step()
        if s3.down:
            assert len(uploader.buffer) <= 30  # only the upload in flight, not every reading since
    # Then nothing is unaccounted for, the drops are counted, and the held readings went up late
    sent = [json.loads(line) for _, body in s3.objects for line in gzip.decompress(body).splitlines()]
    assert sim.readings == 30 * 30
    assert len(sent) + sim.held + sim.dropped + len(uploader.buffer) == sim.readings
    assert uploader.buffer == []
    assert sim.dropped >= 30 * (8 - 1 - 5)  # 8 ticks down, one upload in flight, 5 kept per vehicle
    assert uploader.outages == 1 and uploader.records_late >= 30 and sim.forwarded >= 30 * 5
    assert sim.held_for_backend > 0
    missing_total = 0
    for v in fleet:
        mine = [r["seq"] for r in sent if r["vin"] == v.vin]
        assert len(mine) == len(set(mine))  # each reading sent at most once
        missing = sorted(set(range(30)) - set(mine) - set(_seqs(v.outbox)))
        missing_total += len(missing)
        # Oldest first: what was dropped came before every reading the vehicle kept from the outage.
        kept = [seq for seq in range(4, 11) if seq not in missing]
        assert missing and max(missing) < min(kept), (v.vin, missing)
    assert missing_total == sim.dropped
    text = summary(sim, uploader)
    assert f"{sim.dropped:,} dropped (oldest first, outbox 5 per vehicle)" in text
    assert f"{sim.forwarded + uploader.records_late:,} uploaded late" in text
    assert "backend unreachable 1 time(s)" in text


def test_the_outbox_size_is_a_command_line_option_and_the_summary_counts_the_drops(tmp_path: object) -> None:
    run = run_cli(  # type: ignore[arg-type]
        tmp_path, "--vehicles", "20", "--ticks", "40", "--seed", "4", "--offline-rate", "0.6",
        "--outage-minutes", "60", "--outbox-readings", "3",
    )  # fmt: skip
    assert run.dropped > 0
    assert run.sent + run.held + run.dropped == run.generated == 20 * 40
    assert run.held <= 20 * 3


class _AwayQueue:
    def receive(self, wait_s: float = 0.0) -> list:
        raise BackendUnavailableError("cannot reach the SQS endpoint")

    def close(self) -> None:
        raise BackendUnavailableError("cannot reach the SQS endpoint")


def test_job_notifications_wait_in_their_queue_while_the_endpoint_is_away(
    capsys: pytest.CaptureFixture,
) -> None:
    key = ec.generate_private_key(ec.SECP256R1()).public_key()
    listener = JobListener(
        _AwayQueue(), VehicleOtaClient(TrustedKeys(image=key, director=key), read_job=lambda vin, k: b"")
    )
    assert listener.poll(wait_s=1.0) == 0
    assert listener.failed_polls == 1
    listener.close()
    assert capsys.readouterr().err.startswith("warning: job notification queue not removed")
