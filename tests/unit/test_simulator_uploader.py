"""Batches, keys and the command line's error contract."""

from __future__ import annotations

import gzip
import json
import socket
from datetime import datetime
from typing import TYPE_CHECKING

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError
from simulator_support import KEY_PATTERN, MemorySink

from fleetota_core.adapters.telemetry_store import TelemetryStore
from fleetota_core.errors import (
    BackendUnavailableError,
    PermanentError,
    ResourceNotFoundError,
    TransientAWSError,
)
from simulator.__main__ import main
from simulator.fleet import generate_fleet
from simulator.runner import run
from simulator.simulation import FleetSimulation
from simulator.uploader import BatchUploader, batch_key

if TYPE_CHECKING:
    from pathlib import Path

T = datetime.fromisoformat("2026-03-03T03:02:05+00:00").timestamp()


def test_keys_are_partitioned_by_upload_date_and_hour() -> None:
    key = batch_key(T, "abcd1234", 7)
    assert key == "raw/dt=2026-03-03/hour=03/20260303T030205Z-abcd1234-000007.ndjson.gz"
    assert KEY_PATTERN.match(key)


def test_a_flush_writes_objects_of_at_most_batch_size_records_with_a_stable_gzip_header() -> None:
    sink = MemorySink()
    uploader = BatchUploader(sink, 1000, "abcd1234")
    uploader.add([f'{{"n":{i}}}' for i in range(2500)])
    uploader.flush(T)
    sizes = [len(gzip.decompress(body).decode().splitlines()) for _, body in sink.objects]
    assert sizes == [1000, 1000, 500]
    assert all(body[4:8] == b"\0\0\0\0" for _, body in sink.objects)  # gzip mtime is zero
    assert (uploader.records_sent, uploader.objects_sent, uploader.buffer) == (2500, 3, [])
    assert uploader.bytes_sent == sum(len(body) for _, body in sink.objects)


def test_a_permanent_failure_ends_the_run_at_once_and_the_records_stay_buffered() -> None:
    class DeniedSink:
        def put_batch(self, key: str, body: bytes) -> None:
            raise PermanentError("S3 AccessDenied")

    uploader = BatchUploader(DeniedSink(), 10, "abcd1234")
    uploader.add(["{}"] * 25)
    with pytest.raises(PermanentError):
        uploader.flush(T)
    assert len(uploader.buffer) == 25 and uploader.records_sent == 0


def test_an_unreachable_backend_is_retried_with_backoff_and_never_ends_the_run() -> None:
    class DownSink:
        attempts = 0

        def put_batch(self, key: str, body: bytes) -> None:
            self.attempts += 1
            raise BackendUnavailableError("S3 is down")

    sink = DownSink()
    uploader = BatchUploader(sink, 10, "abcd1234")
    uploader.add(["{}"] * 25)
    tried_at = []
    for flush in range(40):
        before = sink.attempts
        uploader.flush(T + flush)
        if sink.attempts > before:
            tried_at.append(flush)
    # Waits of 1, 2, 4, then 8 skipped flushes between the attempts, for as long as it stays away.
    assert tried_at == [0, 2, 5, 10, 19, 28, 37]
    assert uploader.backend_down and (uploader.outages, uploader.failed_uploads) == (1, 7)
    assert len(uploader.buffer) == 25 and uploader.records_sent == 0


def test_a_failing_backend_keeps_records_for_a_later_flush_and_counts_them_late_when_they_go() -> None:
    class FlakySink(MemorySink):
        failures = 1

        def put_batch(self, key: str, body: bytes) -> None:
            if self.failures:
                self.failures -= 1
                raise TransientAWSError("S3 SlowDown")
            super().put_batch(key, body)

    sink = FlakySink()
    uploader = BatchUploader(sink, 10, "abcd1234")
    uploader.add(["{}"] * 15)
    uploader.flush(T)
    assert (len(uploader.buffer), uploader.records_sent, uploader.backend_down) == (15, 0, True)
    uploader.flush(T + 5)  # backing off: skipped
    uploader.add(["{}"] * 4)
    uploader.flush(T + 10)
    assert (len(uploader.buffer), uploader.records_sent, len(sink.objects)) == (0, 19, 2)
    assert (uploader.records_late, uploader.backend_down, uploader.outages) == (15, False, 1)

    sink.failures = 8
    uploader.add(["{}"])
    for flush in range(60):
        uploader.flush(T + flush)  # eight failures in a row: still holding, never raising
    assert uploader.buffer == [] and uploader.records_sent == 20 and uploader.records_late == 16


class _FakeS3:
    def __init__(self, error: Exception) -> None:
        self.error = error

    def head_bucket(self, **kwargs: object) -> None:
        raise self.error

    put_object = head_bucket


def test_a_missing_bucket_is_a_resource_not_found_error_naming_the_bucket() -> None:
    error = ClientError({"Error": {"Code": "NoSuchBucket", "Message": "nope"}}, "PutObject")
    store = TelemetryStore("fleet-telemetry", _FakeS3(error))
    with pytest.raises(ResourceNotFoundError, match="fleet-telemetry"):
        store.put_batch("raw/x.ndjson.gz", b"")
    head_error = ClientError({"Error": {"Code": "404", "Message": "Not Found"}}, "HeadBucket")
    with pytest.raises(ResourceNotFoundError, match="does not exist"):
        TelemetryStore("fleet-telemetry", _FakeS3(head_error)).check()


def test_an_unreachable_endpoint_is_a_backend_unavailable_error() -> None:
    store = TelemetryStore("b", _FakeS3(EndpointConnectionError(endpoint_url="http://127.0.0.1:9")))
    with pytest.raises(BackendUnavailableError, match="cannot reach"):
        store.check()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_the_cli_reports_an_unreachable_endpoint_in_one_line_and_exits_1(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    monkeypatch.setenv("FLEETOTA_MODE", "local")
    monkeypatch.setenv("FLEETOTA_LOCAL_PORT", str(_free_port()))
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    code = main(["--vehicles", "5", "--ticks", "1", "--quiet"])
    err = capsys.readouterr().err
    assert code == 1
    assert err.count("\n") == 1 and err.startswith("error: cannot reach the S3 endpoint")
    assert "Traceback" not in err


@pytest.mark.parametrize(
    "args",
    [
        ["--speed", "-1"],
        ["--vehicles", "0"],
        ["--offline-rate", "1.5"],
        ["--batch-size", "0"],
        ["--outbox-readings", "0"],
    ],
)
def test_the_cli_rejects_impossible_options(args: list[str], capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as exc:
        main(args)
    assert exc.value.code == 2
    assert "error:" in capsys.readouterr().err


def test_duration_stops_the_run_after_that_many_wall_seconds(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    # 10 s ticks at 50x: one every 0.2 s, so 0.5 s of wall time allows two ticks.
    code = main(
        ["--vehicles", "5", "--interval", "10", "--speed", "50", "--duration", "0.5", "--out", str(tmp_path)]
    )
    out = capsys.readouterr().out
    assert code == 0
    assert "done: 2 ticks" in out


def test_a_held_part_filled_object_waits_one_flush_while_full_objects_go_out_at_once() -> None:
    sink = MemorySink()
    uploader = BatchUploader(sink, 10, "abcd1234")
    uploader.add(["{}"] * 14)
    uploader.flush(T, hold_partial=True)
    assert (len(sink.objects), len(uploader.buffer)) == (1, 4)  # the 4 wait to fill an object
    uploader.add(["{}"] * 3)
    uploader.flush(T + 1, hold_partial=True)
    assert (len(sink.objects), uploader.buffer) == (2, [])  # held once already: out, part-filled
    uploader.add(["{}"] * 3)
    uploader.flush(T + 2, hold_partial=True)
    assert (len(sink.objects), len(uploader.buffer)) == (2, 3)


INTERVAL = 10.0


def _timed_run(flush_s: float | None) -> list[tuple[float, list[dict]]]:
    """(simulated flush time, records of the objects it uploaded) per flush of a 3-interval run."""
    sink = MemorySink()
    sim = FleetSimulation(
        generate_fleet(300, seed=5), BatchUploader(sink, 1000, "cadence"), start=T, interval=INTERVAL, seed=5
    )
    flushes: list[tuple[float, list[dict]]] = []
    flush = sim.uploader.flush

    def timed_flush(t: float, *, hold_partial: bool = False) -> None:
        before = len(sink.objects)
        flush(t, hold_partial=hold_partial)
        bodies = [body for _, body in sink.objects[before:]]
        flushes.append((t, [json.loads(line) for b in bodies for line in gzip.decompress(b).splitlines()]))

    sim.uploader.flush = timed_flush  # type: ignore[method-assign]
    # 50x: a 10 s interval takes 0.2 s of wall time, so 0.1 s flushes give slices of 0.05 s.
    report = run(sim, speed=50, ticks=3, flush_s=flush_s)
    assert report.ticks == 3 and sim.readings == 900
    return flushes


def _wait_of_newest_reading_per_vehicle(flushes: list[tuple[float, list[dict]]]) -> list[float]:
    waits = []
    for t, records in flushes:
        newest: dict[str, float] = {}
        for r in records:
            ts = datetime.fromisoformat(r["ts"].replace("Z", "+00:00")).timestamp()
            newest[r["vin"]] = max(ts, newest.get(r["vin"], ts))
        waits += [t - ts for ts in newest.values()]
    return waits


def test_a_real_time_run_uploads_each_reading_within_the_flush_cadence_not_a_whole_interval() -> None:
    flushes = _timed_run(flush_s=0.1)
    # 0.1 wall s at 50x is 5 simulated seconds: slices of 2.5 s, 4 per interval, 12 flushes.
    assert len(flushes) == 12
    waits = _wait_of_newest_reading_per_vehicle(flushes)
    assert len(waits) > 800
    assert min(waits) >= 0 and max(waits) <= 5.0 + 1e-6  # at most two slices (one held)


def test_without_a_flush_cadence_readings_wait_up_to_the_whole_interval() -> None:
    flushes = _timed_run(flush_s=None)
    assert len(flushes) == 3
    assert max(_wait_of_newest_reading_per_vehicle(flushes)) > 0.9 * INTERVAL
