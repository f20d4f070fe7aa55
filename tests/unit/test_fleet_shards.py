"""The sharded fleet snapshot over an in-memory bucket: routing, the shard-at-a-time merge, migration."""

from __future__ import annotations

import gzip
import random
from datetime import timedelta

import msgspec
import pytest

from fleetota_core.adapters import fleet_shard_merge, fleet_shards
from fleetota_core.adapters.fleet_shard_rows import ShardedRows
from fleetota_core.adapters.fleet_shards import (
    INDEX_KEY,
    SnapshotIndex,
    decode_index,
    shard_key,
    shard_of,
    shards_for,
)
from fleetota_core.adapters.fleet_snapshot import (
    DELTA_PREFIX,
    SNAPSHOT_KEY,
    SnapshotFormatError,
)
from fleetota_core.adapters.fleet_snapshot_reads import read_fleet_snapshot, read_snapshot_index
from fleetota_core.services.ingest.fleet_health import (
    fleet_health,
    fleet_rows,
    merge_delta_rows,
    refresh_fleet,
    refresh_online,
)
from tests.unit.snapshot_fakes import NOW, MemoryS3, item, put_delta, single_document, stack, vin


def test_shards_are_a_power_of_two_from_the_fleet_size_and_doubling_splits_each_shard_in_two() -> None:
    assert [shards_for(n) for n in (0, 16_384, 16_385, 1_000_000)] == [1, 1, 2, 64]
    assert shards_for(10, at_least=8) == 8
    for n in range(2000):
        assert shard_of(vin(n), 64) in (shard_of(vin(n), 32), shard_of(vin(n), 32) + 32)


@pytest.mark.parametrize(
    ("index", "reason"),
    [
        (b"{not json", "not JSON"),
        (b'{"format": "other"}', "not a fleetota.fleet-snapshot-index"),
        (SnapshotIndex(3, [0, 0, 0]).encode(), "not a power of two"),
        (SnapshotIndex(2, [0]).encode(), "one whole number per shard"),
        (SnapshotIndex(1, [0], columns=["make"]).encode(), "with 'vin'"),
    ],
    ids=["not-json", "other-format", "three-shards", "counts", "no-vin"],
)
def test_an_index_this_version_cannot_use_is_refused_with_the_reason(index: bytes, reason: str) -> None:
    with pytest.raises(SnapshotFormatError, match=reason):
        decode_index(index)


def test_a_tick_merges_deltas_shard_by_shard_to_the_same_rows_and_health_as_one_document(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Given a fleet of 3,000 in 4 shards and deltas with newer, older and tied readings,
    when the update manager ticks, then every vehicle has its newest reading (a later delta wins a
    tie), each in the shard its VIN hashes to, and fleet health is what the single document gave."""
    monkeypatch.setattr(fleet_shards, "SHARD_VEHICLES", 1000)
    s3 = MemoryS3()
    clients, resources = stack(s3)
    seen = NOW - timedelta(minutes=2)
    previous = fleet_rows((item(n, seen, 5) for n in range(3000)), NOW)
    single_document(s3, previous)
    refresh_fleet(clients, resources, NOW + timedelta(seconds=1))  # migrates: 4 shards
    assert read_snapshot_index(s3, "telemetry").shards == 4  # type: ignore[union-attr]

    tick = NOW + timedelta(minutes=1)
    rng = random.Random(3)
    deltas = []
    for d in range(5):
        picked = rng.sample(range(3000), 700)
        at = tick - timedelta(seconds=50 - d)
        # Newer readings, one older (seq 4 at the old time), one tie (same ts and seq as the last delta).
        rows = fleet_rows(
            (item(n, at if n % 3 else seen, 6 if n % 3 else 4, soc_pct=float(d)) for n in picked), at
        )
        deltas.append(rows)
        put_delta(s3, rows, at, f"d{d}")
    expected = read_fleet_snapshot(clients, resources).rows()  # type: ignore[union-attr]
    for rows in deltas:
        merge_delta_rows(expected, rows)
    refresh_online(expected, tick)

    refreshed = refresh_fleet(clients, resources, tick)

    got = read_fleet_snapshot(clients, resources).rows()  # type: ignore[union-attr]
    assert got == expected
    assert refreshed.health.as_dict() == fleet_health(expected, tick).as_dict()
    index = read_snapshot_index(s3, "telemetry")
    assert index is not None and index.vehicles == 3000
    for shard in range(4):
        document = ShardedRows(s3, "telemetry", index).rows_of(shard)
        assert {shard_of(v, 4) for v in document} == {shard} and len(document) == index.counts[shard]


def test_a_shard_no_line_came_in_for_is_not_rewritten(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fleet_shards, "SHARD_VEHICLES", 100)
    s3 = MemoryS3()
    clients, resources = stack(s3)
    single_document(s3, fleet_rows((item(n, NOW, 1) for n in range(800)), NOW))
    refresh_fleet(clients, resources, NOW + timedelta(seconds=1))
    shards = read_snapshot_index(s3, "telemetry").shards  # type: ignore[union-attr]
    one = next(n for n in range(800) if shard_of(vin(n), shards) == 0)
    at = NOW + timedelta(seconds=20)
    put_delta(s3, fleet_rows([item(one, at, 2)], at), at, "one")
    s3.calls.clear()

    refresh_fleet(clients, resources, NOW + timedelta(minutes=1))

    assert s3.calls["PutObject"] == 2  # shard 0 and the index
    assert ShardedRows(s3, "telemetry", read_snapshot_index(s3, "telemetry"))[vin(one)]["last_seq"] == 2  # type: ignore[arg-type]


def test_an_upgraded_stacks_single_document_becomes_shards_and_is_deleted(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(fleet_shards, "SHARD_VEHICLES", 100)
    s3 = MemoryS3()
    clients, resources = stack(s3)
    rows = fleet_rows((item(n, NOW, 1) for n in range(500)), NOW)
    single_document(s3, rows)
    before = read_fleet_snapshot(clients, resources)  # readers read it until the first tick
    assert before is not None and before.rows() == rows

    refresh_fleet(clients, resources, NOW + timedelta(seconds=1))

    assert SNAPSHOT_KEY not in s3.objects and INDEX_KEY in s3.objects
    index = read_snapshot_index(s3, "telemetry")
    assert index is not None and index.shards == 8 and not index.legacy
    assert set(index.keys()) <= set(s3.objects)
    after = read_fleet_snapshot(clients, resources)
    assert after is not None and after.rows().keys() == rows.keys()
    assert index.sweep == before.sweep and index.rebuilt_at == before.rebuilt_at  # the sweep carries on


def test_a_growing_fleet_doubles_its_shards_keeps_every_vehicle_and_retires_the_old_shards(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(fleet_shards, "SHARD_VEHICLES", 100)
    s3 = MemoryS3()
    clients, resources = stack(s3)
    single_document(s3, fleet_rows((item(n, NOW, 1) for n in range(150)), NOW))
    refresh_fleet(clients, resources, NOW + timedelta(seconds=1))
    assert read_snapshot_index(s3, "telemetry").shards == 2  # type: ignore[union-attr]
    at = NOW + timedelta(seconds=20)
    put_delta(s3, fleet_rows((item(n, at, 2) for n in range(150, 700)), at), at, "new")

    refresh_fleet(clients, resources, NOW + timedelta(minutes=1))
    assert read_snapshot_index(s3, "telemetry").vehicles == 700  # type: ignore[union-attr]
    refresh_fleet(clients, resources, NOW + timedelta(minutes=2))  # sized from the last tick's count

    index = read_snapshot_index(s3, "telemetry")
    assert index is not None and index.shards == 8 and index.vehicles == 700
    assert shard_key(2, 0) not in s3.objects and shard_key(2, 1) not in s3.objects
    assert sorted(read_fleet_snapshot(clients, resources).rows()) == sorted(vin(n) for n in range(700))  # type: ignore[union-attr]


def test_the_merge_holds_one_shards_lines_at_a_time(monkeypatch: pytest.MonkeyPatch) -> None:
    """At 1,000,000 vehicles the fleet is gigabytes as rows: the tick decodes a shard at a time."""
    monkeypatch.setattr(fleet_shards, "SHARD_VEHICLES", 250)
    s3 = MemoryS3()
    clients, resources = stack(s3)
    single_document(s3, fleet_rows((item(n, NOW, 1) for n in range(4000)), NOW))
    refresh_fleet(clients, resources, NOW + timedelta(seconds=1))
    at = NOW + timedelta(seconds=20)
    for d in range(4):
        put_delta(s3, fleet_rows((item(n, at, 2 + d) for n in range(4000)), at), at, f"all{d}")
    decoded: list[int] = []
    winners = fleet_shard_merge.ShardMerge._winners
    monkeypatch.setattr(
        fleet_shard_merge.ShardMerge,
        "_winners",
        lambda self, previous, incoming: (
            decoded.append(len(previous) + len(incoming)) or winners(self, previous, incoming)
        ),
    )

    refresh_fleet(clients, resources, NOW + timedelta(minutes=1))

    # 16 shards, each of its previous lines and one line a vehicle of the 4 deltas (the newest)
    assert len(decoded) == 16 and sum(decoded) == 2 * 4000
    assert max(decoded) < 2 * 4000 / 16 * 1.5


def test_readers_judge_online_at_the_snapshots_time_not_as_the_line_was_written() -> None:
    s3 = MemoryS3()
    clients, resources = stack(s3)
    at = NOW - timedelta(minutes=10)
    single_document(s3, fleet_rows([item(1, at, 1)], at))  # online when written, 10 minutes ago

    refresh_fleet(clients, resources, NOW)

    index = read_snapshot_index(s3, "telemetry")
    assert index is not None
    assert ShardedRows(s3, "telemetry", index)[vin(1)]["online"] is False
    assert read_fleet_snapshot(clients, resources).rows()[vin(1)]["online"] is False  # type: ignore[union-attr]


def test_eligibility_reads_only_the_shards_of_the_vehicles_it_looks_up(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(fleet_shards, "SHARD_VEHICLES", 50)
    s3 = MemoryS3()
    clients, resources = stack(s3)
    single_document(s3, fleet_rows((item(n, NOW, 1) for n in range(1000)), NOW))
    rows = refresh_fleet(clients, resources, NOW + timedelta(seconds=1)).rows
    shards = read_snapshot_index(s3, "telemetry").shards  # type: ignore[union-attr]
    same = [n for n in range(1000) if shard_of(vin(n), shards) == 3][:10]

    found = rows.lookup([vin(n) for n in same] + ["1FA6P8TH0P5999999"])  # type: ignore[attr-defined]

    assert sorted(found) == sorted(vin(n) for n in same)
    assert rows.fetched == 1 + (shard_of("1FA6P8TH0P5999999", shards) != 3)  # type: ignore[attr-defined]
    assert vin(same[0]) in rows and "1FA6P8TH0P5999999" not in rows and len(rows) == 1000


def test_a_line_of_another_layout_is_normalised_and_an_unusable_one_left_out() -> None:
    s3 = MemoryS3()
    clients, resources = stack(s3)
    refresh_fleet(clients, resources, NOW)
    at = NOW + timedelta(seconds=20)
    ms = int(at.timestamp() * 1000)
    lines = [
        # An older writer: the VIN not first, numbers as floats.
        msgspec.json.encode({"last_ts_ms": float(ms), "last_seq": 2.0, "network": "LTE", "vin": vin(7)}),
        b'{"make": "no vin"}',
        b"{not json",
    ]
    header = b'{"format": "fleetota.fleet-snapshot", "schema_version": 1, "columns": ["vin"]}'
    key = f"{DELTA_PREFIX}{ms:013d}-old.ndjson.gz"
    s3.objects[key] = gzip.compress(header + b"\n" + b"\n".join(lines) + b"\n")

    refreshed = refresh_fleet(clients, resources, NOW + timedelta(minutes=1))

    row = refreshed.rows[vin(7)]
    assert (row["last_ts_ms"], row["last_seq"], row["online"]) == (ms, 2, True)
    assert refreshed.health.vehicles == 1


def test_a_lost_shard_does_not_stop_the_tick_and_its_vehicles_come_back_with_their_next_reading(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(fleet_shards, "SHARD_VEHICLES", 100)
    s3 = MemoryS3()
    clients, resources = stack(s3)
    single_document(s3, fleet_rows((item(n, NOW, 1) for n in range(400)), NOW))
    refresh_fleet(clients, resources, NOW + timedelta(seconds=1))
    index = read_snapshot_index(s3, "telemetry")
    assert index is not None
    lost = [n for n in range(400) if shard_of(vin(n), index.shards) == 1]
    del s3.objects[shard_key(index.shards, 1)]
    assert vin(lost[0]) not in ShardedRows(s3, "telemetry", index)  # read as empty, not raised
    at = NOW + timedelta(seconds=20)
    put_delta(s3, fleet_rows((item(n, at, 2) for n in lost[:3]), at), at, "back")

    refreshed = refresh_fleet(clients, resources, NOW + timedelta(minutes=1))

    assert refreshed.health.vehicles == 400 - len(lost) + 3
    assert all(vin(n) in refreshed.rows for n in lost[:3])


def test_a_shard_is_written_in_blocks_and_a_lookup_finds_every_vehicle_in_its_block() -> None:
    s3 = MemoryS3()
    clients, resources = stack(s3)
    rows = fleet_rows((item(n, NOW, 1) for n in range(2000)), NOW)
    single_document(s3, rows)
    refresh_fleet(clients, resources, NOW + timedelta(seconds=1))
    index = read_snapshot_index(s3, "telemetry")
    assert index is not None and index.shards == 1
    header = msgspec.json.decode(gzip.decompress(s3.objects[shard_key(1, 0)]).partition(b"\n")[0])
    assert len(header["blocks"]) == 2000 // 64

    source = ShardedRows(s3, "telemetry", index)
    whole = read_fleet_snapshot(clients, resources).rows()  # type: ignore[union-attr]
    assert source.lookup(list(rows)) == whole and len(whole) == 2000
    assert "5YJ3E1EA0P9999999" not in source and source.fetched == 1
    assert dict(source.items()) == whole and sorted(source) == sorted(whole)  # targeting's whole-fleet pass
