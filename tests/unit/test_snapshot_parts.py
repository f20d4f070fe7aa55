"""The snapshot merge in parts writes what one process writes (issue #16: 1M vehicles at 10 s).

Each case runs the same tick twice over copies of one bucket: once in one process, once in ``parts``
workers (run here in this process, each request and result through msgpack as between processes),
and compares every object written, byte for byte, and the fleet health.
"""

from __future__ import annotations

import copy
import random
import sys
from collections import Counter
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import msgspec
import pytest

from fleetota_core.adapters import fleet_shards
from fleetota_core.adapters.fleet_delta_parts import fetch_deltas, fetched_deltas, part_lines
from fleetota_core.adapters.fleet_snapshot import DELTA_PREFIX, decode, encode, encode_delta, part_of
from fleetota_core.adapters.fleet_snapshot_reads import read_snapshot_index
from fleetota_core.adapters.vehicle_state import to_attr
from fleetota_core.services.ingest import snapshot_parts
from fleetota_core.services.ingest.fleet_health import FleetTally, fleet_rows, refresh_fleet, snapshot_row
from fleetota_core.services.ingest.snapshot_parts import (
    PartRequest,
    PartResult,
    merge_part,
    parts_for,
    snapshot_workers,
)
from tests.unit.snapshot_fakes import NOW, MemoryS3, item, single_document, stack, vin

if TYPE_CHECKING:
    from pathlib import Path


class ItemsTable:
    """A vehicles table whose first scan segment holds ``items`` (the healing sweep reads them)."""

    def __init__(self, items: list[dict[str, Any]]) -> None:
        self.items = [{k: to_attr(v) for k, v in one.items()} for one in items]

    def scan(self, **kwargs: Any) -> dict[str, Any]:
        return {"Items": self.items if kwargs.get("Segment", 0) == 0 else []}


def in_this_process(s3: MemoryS3, seen: list[PartRequest]) -> snapshot_parts.PartRunner:
    def run(requests: list[PartRequest]) -> list[PartResult]:
        results = []
        for request in requests:
            request = msgspec.msgpack.decode(msgspec.msgpack.encode(request), type=PartRequest)
            seen.append(request)
            tally = FleetTally(datetime.fromisoformat(request.now))
            result = merge_part(s3, request, snapshot_row, tally)
            results.append(msgspec.msgpack.decode(msgspec.msgpack.encode(result), type=PartResult))
        return results

    return run


def fleet_with_a_minute_of_deltas(seed: int, encoder: Any) -> MemoryS3:
    """600 vehicles in 4 shards, then each reporting 6 times across 30 deltas (some ties on (ts, seq))."""
    s3 = MemoryS3()
    clients, resources = stack(s3)
    single_document(s3, fleet_rows((item(n, NOW - timedelta(minutes=2), 5) for n in range(600)), NOW))
    refresh_fleet(clients, resources, NOW + timedelta(seconds=1))
    rng = random.Random(seed)
    for d in range(30):
        rows = {}
        for n in rng.sample(range(650), 150):  # 50 vehicles the snapshot has not seen yet
            reading = d // 5
            at = NOW + timedelta(seconds=10 * reading + rng.randrange(10))
            seq = 6 + reading if rng.random() > 0.2 else 6
            rows[vin(n)] = fleet_rows([item(n, at, seq, soc_pct=float(rng.randrange(100)))], NOW)[vin(n)]
        written = NOW + timedelta(seconds=2 * d)
        key = f"{DELTA_PREFIX}{int(written.timestamp() * 1000):013d}-d{d:02d}.ndjson.gz"
        s3.objects[key] = encoder(rows, written.isoformat())
    return s3


@pytest.mark.parametrize("parts", [2, 4])
@pytest.mark.parametrize(
    "encoder", [encode_delta, encode], ids=["deltas in parts", "deltas of earlier versions"]
)
@pytest.mark.parametrize("seed", [1, 2])
def test_a_merge_in_parts_writes_the_same_shards_index_and_health_as_one_process(
    monkeypatch: pytest.MonkeyPatch, parts: int, encoder: Any, seed: int
) -> None:
    monkeypatch.setattr(fleet_shards, "SHARD_VEHICLES", 150)
    one = fleet_with_a_minute_of_deltas(seed, encoder)
    split = copy.deepcopy(one)
    tick = NOW + timedelta(minutes=2)

    monkeypatch.delenv(snapshot_parts.WORKERS_ENV, raising=False)
    alone = refresh_fleet(*stack(one), tick)
    monkeypatch.setenv(snapshot_parts.WORKERS_ENV, str(parts))
    seen: list[PartRequest] = []
    in_parts = refresh_fleet(*stack(split), tick, run_parts=in_this_process(split, seen))

    assert [r.part for r in seen] == list(range(parts)) and {r.parts for r in seen} == {parts}
    assert split.objects.keys() == one.objects.keys()
    assert {k: v for k, v in split.objects.items() if v != one.objects[k]} == {}
    assert read_snapshot_index(split, "telemetry").vehicles == 650  # type: ignore[union-attr]
    assert in_parts.health.as_dict() == alone.health.as_dict()


def test_the_sweeps_rows_reach_the_worker_of_their_part_and_win_ties_as_in_one_process(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(fleet_shards, "SHARD_VEHICLES", 150)
    one = fleet_with_a_minute_of_deltas(3, encode_delta)
    split = copy.deepcopy(one)
    tick = NOW + timedelta(minutes=40)  # the last sweep began 45 minutes ago: a new one is due
    late = NOW + timedelta(seconds=55)
    swept = [item(n, late, 99, soc_pct=1.0) for n in range(0, 650, 3)]  # newer than any delta line

    def with_table(s3: MemoryS3) -> tuple[Any, Any]:
        clients, resources = stack(s3)
        clients.dynamodb = ItemsTable(swept)
        return clients, resources

    monkeypatch.delenv(snapshot_parts.WORKERS_ENV, raising=False)
    alone = refresh_fleet(*with_table(one), tick)
    monkeypatch.setenv(snapshot_parts.WORKERS_ENV, "4")
    seen: list[PartRequest] = []
    in_parts = refresh_fleet(*with_table(split), tick, run_parts=in_this_process(split, seen))

    for request in seen:
        vins = [line[8:25] for line in request.sweep.split(b"\n") if line]
        assert vins and all(part_of(v, 4) == request.part for v in vins)
    assert sum(len(r.sweep.split(b"\n")) - 1 for r in seen) == len(swept)
    assert {k: v for k, v in split.objects.items() if v != one.objects.get(k)} == {}
    assert in_parts.health.as_dict() == alone.health.as_dict()


def test_a_delta_in_parts_reads_whole_to_any_reader_and_a_part_holds_exactly_its_vehicles() -> None:
    rows = fleet_rows((item(n, NOW, 1) for n in range(300)), NOW)
    body = encode_delta(rows, NOW.isoformat())
    assert decode(body).rows().keys() == rows.keys()
    for parts in (1, 2, 4, 8, 16):
        seen = []
        for part in range(parts):
            lines = [line for line in part_lines(body, part, parts).split(b"\n") if line]
            assert all(part_of(line[8:25], parts) == part for line in lines)
            seen += [line[8:25].decode() for line in lines]
        assert sorted(seen) == sorted(rows)


def test_workers_follow_the_functions_memory_and_parts_need_a_sharded_snapshot_to_split() -> None:
    assert snapshot_workers({}) == 1
    assert snapshot_workers({snapshot_parts.WORKERS_ENV: "four"}) == 1  # said in the log, not a crash
    assert snapshot_workers({"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "1769"}) == 1
    assert snapshot_workers({"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "7076"}) == 4
    assert snapshot_workers({"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "10240"}) == 4  # 6 vCPUs: 4 parts
    assert (
        snapshot_workers({snapshot_parts.WORKERS_ENV: "64", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "1769"}) == 16
    )
    sharded = fleet_shards.SnapshotIndex(64, [0] * 64)
    assert parts_for(4, sharded, 64) == 4
    assert parts_for(4, fleet_shards.SnapshotIndex(2, [0, 0]), 4) == 2  # at most what both counts divide
    assert parts_for(4, None, 64) == 1  # a first tick
    assert parts_for(4, fleet_shards.SnapshotIndex(1, [0], legacy=True), 64) == 1


def test_a_worker_that_fails_fails_the_tick_with_its_reason_and_leaves_the_index_for_the_next(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(fleet_shards, "SHARD_VEHICLES", 150)
    s3 = fleet_with_a_minute_of_deltas(4, encode_delta)
    index_before = s3.objects[fleet_shards.INDEX_KEY]
    monkeypatch.setenv(snapshot_parts.WORKERS_ENV, "2")
    crash = snapshot_parts.process_runner([sys.executable, "-c", "import sys; sys.exit('out of memory')"])

    with pytest.raises(
        snapshot_parts.SnapshotWorkerError, match=r"part [01] of 2 exited with 1: out of memory"
    ):
        refresh_fleet(*stack(s3), NOW + timedelta(minutes=2), run_parts=crash)

    assert s3.objects[fleet_shards.INDEX_KEY] == index_before  # the next tick merges the same deltas


def test_a_workers_warnings_reach_the_ticks_log(caplog: pytest.LogCaptureFixture) -> None:
    warn_then_answer = (
        "import sys, msgspec; sys.stdin.buffer.read();"
        "print('s3://telemetry/d1: not gzip; skipped', file=sys.stderr);"
        "sys.stdout.buffer.write(msgspec.msgpack.encode({'counts': [], 'written': 0, 'spooled': 0,"
        "'skipped': 0, 'spool_bytes': 0, 'tally': {}}))"
    )
    run = snapshot_parts.process_runner([sys.executable, "-c", warn_then_answer])
    request = PartRequest("telemetry", b"", 1, 0, 1, [], b"", {}, NOW.isoformat())

    with caplog.at_level("WARNING"):
        (result,) = run([request])

    assert result.written == 0
    assert "snapshot merge part 0 of 1: s3://telemetry/d1: not gzip; skipped" in caplog.text


def test_a_merge_in_parts_gets_each_delta_once_for_all_its_workers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fleet_shards, "SHARD_VEHICLES", 150)
    s3 = fleet_with_a_minute_of_deltas(4, encode_delta)
    got: Counter[str] = Counter()
    get_object = s3.get_object

    def counting(Key: str, **kwargs: Any) -> dict[str, Any]:
        got[Key] += 1
        return get_object(Key=Key, **kwargs)

    s3.get_object = counting  # type: ignore[method-assign]
    monkeypatch.setenv(snapshot_parts.WORKERS_ENV, "4")
    seen: list[PartRequest] = []

    refresh_fleet(*stack(s3), NOW + timedelta(minutes=2), run_parts=in_this_process(s3, seen))

    deltas = {key: n for key, n in got.items() if key.startswith(DELTA_PREFIX)}
    assert len(seen) == 4 and all(request.deltas_dir for request in seen)
    assert len(deltas) == 30 and set(deltas.values()) == {1}  # not once a worker


def test_fetched_deltas_read_as_s3_does_and_a_delta_gone_meanwhile_reads_as_none(tmp_path: Path) -> None:
    s3 = MemoryS3()
    s3.objects.update({f"{DELTA_PREFIX}a": b"first", f"{DELTA_PREFIX}c": b"third"})
    keys = [f"{DELTA_PREFIX}{name}" for name in "abc"]

    assert fetch_deltas(s3, "telemetry", keys, tmp_path) == len(b"first") + len(b"third")

    read = fetched_deltas(tmp_path, keys)
    assert [read(key) for key in keys] == [b"first", None, b"third"]
