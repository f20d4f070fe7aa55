"""The merge picks each vehicle's newest line among many readings a tick (10 s reporting, issue #16).

At 1,000,000 vehicles reporting every 10 s a tick's deltas hold about six lines a vehicle; the merge
spools only the line that can win (the newest (ts, seq), of equals the one in the later delta), so
the snapshot must be exactly what merging every line in order gives.
"""

from __future__ import annotations

import gzip
import random
from datetime import datetime, timedelta
from typing import Any

import msgspec
import pytest

from fleetota_core.adapters import fleet_shards
from fleetota_core.adapters.fleet_snapshot import DELTA_PREFIX, encode_document
from fleetota_core.adapters.fleet_snapshot_reads import read_fleet_snapshot
from fleetota_core.services.ingest.fleet_health import (
    fleet_health,
    fleet_rows,
    merge_delta_rows,
    refresh_fleet,
    refresh_online,
)
from tests.unit.snapshot_fakes import NOW, MemoryS3, item, put_delta, single_document, stack, vin

HEADER = b'{"format": "fleetota.fleet-snapshot", "schema_version": 1, "columns": ["vin"]}'


def put_lines(s3: MemoryS3, lines: list[bytes], written: datetime, name: str) -> None:
    """A delta as a writer other than this version's processor might leave it."""
    key = f"{DELTA_PREFIX}{int(written.timestamp() * 1000):013d}-{name}.ndjson.gz"
    s3.objects[key] = gzip.compress(HEADER + b"\n" + b"\n".join(lines) + b"\n")


def line(n: int, at: datetime, seq: int, **values: Any) -> bytes:
    return msgspec.json.encode({"vin": vin(n), **fleet_rows([item(n, at, seq, **values)], at)[vin(n)]})


def test_a_delta_line_cut_short_after_its_vin_opens_is_left_out_and_the_tick_goes_on() -> None:
    s3 = MemoryS3()
    clients, resources = stack(s3)
    refresh_fleet(clients, resources, NOW)
    at = NOW + timedelta(seconds=20)
    put_lines(s3, [b'{"vin":"5YJ3E1', line(1, at, 1)], at, "short")

    refreshed = refresh_fleet(clients, resources, NOW + timedelta(minutes=1))

    assert list(refreshed.rows) == [vin(1)] and refreshed.health.vehicles == 1


def test_a_delta_line_holding_two_vehicles_is_left_out_and_the_tick_goes_on() -> None:
    s3 = MemoryS3()
    clients, resources = stack(s3)
    refresh_fleet(clients, resources, NOW)
    at = NOW + timedelta(seconds=20)
    put_lines(s3, [line(1, at, 1) + line(2, at, 1), line(3, at, 1)], at, "two")

    refreshed = refresh_fleet(clients, resources, NOW + timedelta(minutes=1))

    assert list(refreshed.rows) == [vin(3)]


def expected_after(
    clients: Any, resources: Any, deltas: list[dict[str, Any]], at: datetime
) -> dict[str, Any]:
    """What folding every delta's rows into the snapshot in key order gives (the rule, line by line)."""
    rows = read_fleet_snapshot(clients, resources).rows()  # type: ignore[union-attr]
    for delta in deltas:
        merge_delta_rows(rows, delta)
    refresh_online(rows, at)
    return rows


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_six_readings_a_vehicle_in_any_order_of_deltas_merge_to_each_vehicles_newest(
    monkeypatch: pytest.MonkeyPatch, seed: int
) -> None:
    """Given 600 vehicles in 4 shards, each reporting 6 times in a tick's 30 deltas, the deltas'
    keys in an order their readings' times do not follow (an older reading in a later delta), some
    readings tied on (ts, seq) with other values, when the update manager ticks, then every vehicle
    has exactly the row merging every line in key order gives: the newest, of equals the later."""
    monkeypatch.setattr(fleet_shards, "SHARD_VEHICLES", 150)
    s3 = MemoryS3()
    clients, resources = stack(s3)
    single_document(s3, fleet_rows((item(n, NOW - timedelta(minutes=2), 5) for n in range(600)), NOW))
    refresh_fleet(clients, resources, NOW + timedelta(seconds=1))
    rng = random.Random(seed)
    slots: list[list[dict[str, Any]]] = [[] for _ in range(30)]
    for n in range(600):
        for reading in range(6):
            at = NOW + timedelta(seconds=10 * reading + rng.randrange(10))
            seq = 6 + reading if rng.random() > 0.2 else 6  # some readings share a seq (a reboot)
            if rng.random() < 0.15:  # a tie with the previous reading on (ts, seq), other values
                at, seq = NOW + timedelta(seconds=10 * max(0, reading - 1)), 6 + max(0, reading - 1)
            slots[rng.randrange(30)].append(item(n, at, seq, soc_pct=float(rng.randrange(100))))
    deltas = []
    for d, items in enumerate(slots):
        seen: set[str] = set()
        unique = []
        for one in reversed(items):  # the processor writes one line a vehicle per invocation
            if one["vin"] not in seen:
                seen.add(one["vin"])
                unique.append(one)
        rows = {one["vin"]: fleet_rows([one], NOW)[one["vin"]] for one in rng.sample(unique, len(unique))}
        deltas.append(rows)
        put_delta(s3, rows, NOW + timedelta(seconds=2 * d), f"d{d:02d}")
    tick = NOW + timedelta(minutes=2)
    expected = expected_after(clients, resources, deltas, tick)

    refreshed = refresh_fleet(clients, resources, tick)

    assert read_fleet_snapshot(clients, resources).rows() == expected  # type: ignore[union-attr]
    assert refreshed.health.as_dict() == fleet_health(expected, tick).as_dict()


def test_of_a_vehicles_lines_the_newest_wins_whichever_delta_holds_it() -> None:
    """An older reading in a later delta loses; a higher seq at the same time wins; of equal
    (ts, seq) the later delta's line wins, and of one delta the later line; a line of another
    writer's layout counts the same."""
    s3 = MemoryS3()
    clients, resources = stack(s3)
    refresh_fleet(clients, resources, NOW)
    t1, t2 = NOW + timedelta(seconds=5), NOW + timedelta(seconds=15)
    put_lines(
        s3, [line(1, t2, 1, soc_pct=1.0), line(2, t1, 2, soc_pct=1.0), line(3, t1, 1, soc_pct=1.0)], t1, "a"
    )
    put_lines(
        s3, [line(1, t1, 9, soc_pct=2.0), line(2, t1, 1, soc_pct=2.0), line(3, t1, 1, soc_pct=2.0)], t2, "b"
    )
    ms = int(t1.timestamp() * 1000)
    other = msgspec.json.encode({"soc_pct": 4.0, "last_seq": 1, "last_ts_ms": ms, "vin": vin(4)})
    put_lines(s3, [line(4, t1, 1, soc_pct=3.0), other, line(4, t1, 0, soc_pct=5.0)], t2, "c")
    put_lines(s3, [line(5, t1, 1, soc_pct=6.0), line(5, t1, 1, soc_pct=7.0), line(5, t1, 0)], t2, "d")

    rows = refresh_fleet(clients, resources, NOW + timedelta(minutes=1)).rows

    newest = {n: rows[vin(n)]["soc_pct"] for n in (1, 2, 3, 4, 5)}
    assert newest == {1: 1.0, 2: 1.0, 3: 2.0, 4: 4.0, 5: 7.0}


def test_a_shard_line_of_two_vehicles_beside_a_blank_one_cannot_shift_facts_onto_other_lines() -> None:
    """One decode of a shard's lines yields as many values as lines here (two, then none): the merge
    must not pair a vehicle's facts with another line, so both bad lines are left out."""
    s3 = MemoryS3()
    clients, resources = stack(s3)
    single_document(s3, fleet_rows((item(n, NOW, 1) for n in (1, 2, 3)), NOW))
    refresh_fleet(clients, resources, NOW + timedelta(seconds=1))
    (key,) = [k for k in s3.objects if k.startswith(fleet_shards.SHARD_PREFIX)]
    lines = [line(1, NOW, 1) + line(2, NOW, 1), b"  ", line(3, NOW, 1)]
    s3.objects[key] = encode_document(b"\n".join(lines) + b"\n", {"as_of": NOW.isoformat()})
    at = NOW + timedelta(seconds=20)
    put_delta(s3, fleet_rows([item(9, at, 1)], at), at, "nine")

    rows = refresh_fleet(clients, resources, NOW + timedelta(minutes=1)).rows

    assert sorted(rows) == [vin(3), vin(9)]
    assert rows[vin(3)]["last_seq"] == 1
