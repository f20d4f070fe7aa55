"""The fleet snapshot without AWS: its gzip NDJSON format, the update manager's rows, the dashboard frame."""

from __future__ import annotations

import gzip
import json
import math
from datetime import UTC, datetime, timedelta

import pytest

from fleetota_core.adapters.fleet_snapshot import (
    ROW_COLUMNS,
    SCHEMA_VERSION,
    SNAPSHOT_COLUMNS,
    SnapshotFormatError,
    decode,
    encode,
)
from fleetota_core.services.ingest.fleet_health import fleet_health, fleet_rows, merge_rows, refresh_online
from fleetota_core.views.fleet import normalize_fleet
from fleetota_core.views.fleet_snapshot import snapshot_frame

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
VIN_A, VIN_B = "5YJ3E1EA0PF000001", "1FA6P8TH0P5100002"


def _item(vin: str, seconds_ago: float, seq: int, **values) -> dict:
    ts = NOW - timedelta(seconds=seconds_ago)
    return {
        "vin": vin,
        "make": "Tesla",
        "model": "Tesla Model 3",
        "model_year": 2023,
        "firmware_version": "1.2.0",
        "region": "us-west",
        "last_ts": ts.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "last_ts_ms": int(ts.timestamp() * 1000),
        "last_seq": seq,
        "lat": 37.7,
        "lon": -122.4,
        "soc_pct": 50.0,
        "network": "LTE",
        "needs_update": False,
        **values,
    }


def test_a_snapshot_is_gzip_ndjson_a_header_with_its_schema_version_then_one_line_per_vin() -> None:
    rows = fleet_rows([_item(VIN_A, 10, 1), _item(VIN_B, 20, 4, signal_dbm=None)], NOW)
    body = encode(rows, NOW.isoformat(), "hw", NOW.isoformat())

    header, *lines = [json.loads(line) for line in gzip.decompress(body).splitlines()]
    assert header["format"] == "fleetota.fleet-snapshot" and header["schema_version"] == SCHEMA_VERSION == 1
    assert header["columns"] == list(SNAPSHOT_COLUMNS) and header["high_water"] == "hw"
    assert sorted(line["vin"] for line in lines) == sorted([VIN_A, VIN_B])
    assert all(list(line) == list(SNAPSHOT_COLUMNS) for line in lines)
    document = decode(body)
    assert document.rows() == rows
    assert (document.as_of, document.high_water) == (NOW.isoformat(), "hw")
    assert decode(encode({}, "t")).rows() == {}


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"PAR1\x15\x04\x15\x10PAR1", "not gzip"),  # the Parquet snapshot of earlier versions
        (gzip.compress(b"{not json"), "not JSON"),
        (gzip.compress(b'{"format": "something else"}'), "not a fleetota.fleet-snapshot"),
        (gzip.compress(b'{"format": "fleetota.fleet-snapshot", "schema_version": 2}'), "schema_version 2"),
        (
            gzip.compress(b'{"format": "fleetota.fleet-snapshot", "schema_version": 1, "columns": ["a"]}'),
            "with 'vin'",
        ),
    ],
    ids=["parquet", "not-json", "other-format", "schema-2", "no-vin"],  # gzip bodies carry a timestamp
)
def test_an_object_that_is_not_a_snapshot_this_version_reads_is_refused_with_the_reason(
    body: bytes, reason: str
) -> None:
    with pytest.raises(SnapshotFormatError, match=reason):
        decode(body)


@pytest.mark.parametrize(
    ("line", "reason"), [(b"{broken", "not JSON"), (b'{"make": "Tesla"}', "with a 'vin'"), (b"[1]", "'vin'")]
)
def test_a_bad_vehicle_line_makes_the_rows_unusable_with_the_reason(line: bytes, reason: str) -> None:
    body = gzip.decompress(encode(fleet_rows([_item(VIN_A, 10, 1)], NOW), "t")) + line + b"\n"
    document = decode(gzip.compress(body))
    with pytest.raises(SnapshotFormatError, match=reason):
        document.rows()
    if line != b"[1]":  # pyarrow's reader wants objects too; both refuse
        with pytest.raises(SnapshotFormatError):
            snapshot_frame(document)


def test_decompression_is_bounded() -> None:
    bomb = gzip.compress(b" " * 100_000)
    with pytest.raises(SnapshotFormatError, match="more than 1,000 bytes once decompressed"):
        decode(bomb, limit=1000)


def test_the_newest_reading_per_vin_wins_by_timestamp_then_sequence_whatever_the_order() -> None:
    older, newer, same_ts_higher_seq = _item(VIN_A, 60, 9), _item(VIN_A, 30, 1), _item(VIN_A, 30, 2)

    for order in ([older, newer, same_ts_higher_seq], [same_ts_higher_seq, newer, older]):
        rows = fleet_rows(order, NOW)
        assert list(rows) == [VIN_A]
        assert (rows[VIN_A]["last_seq"], rows[VIN_A]["last_ts_ms"]) == (2, newer["last_ts_ms"])


def test_online_means_a_network_and_a_reading_at_most_five_minutes_old_at_the_snapshot_time() -> None:
    rows = fleet_rows(
        [
            _item("V1", 299, 1),
            _item("V2", 301, 1),
            _item("V3", 10, 1, network="NONE"),
            _item("V4", 10, 1, network=None),
        ],
        NOW,
    )
    assert {vin: row["online"] for vin, row in rows.items()} == {
        "V1": True,
        "V2": False,
        "V3": False,
        "V4": False,
    }
    refresh_online(rows, NOW + timedelta(minutes=10))
    assert not any(row["online"] for row in rows.values())


def test_rows_get_the_snapshots_types_and_a_missing_or_bad_number_becomes_null() -> None:
    item = _item(VIN_A, 10, 1, soc_pct="oops", lat=float("nan"), charging=None, model_year=None)
    del item["last_ts_ms"]
    (row,) = fleet_rows([item], NOW).values()
    assert row["soc_pct"] is None and row["lat"] is None and row["lon"] == -122.4
    assert row["charging"] is False and row["model_year"] == 0
    assert row["last_ts_ms"] == int((NOW - timedelta(seconds=10)).timestamp() * 1000)
    # NaN is not JSON: the row encodes.
    assert decode(encode({VIN_A: row}, "")).rows()[VIN_A]["lat"] is None


def test_a_delta_replaces_only_the_vehicles_it_has_newer_readings_for() -> None:
    rows = fleet_rows([_item(VIN_A, 100, 5, lat=1.0), _item(VIN_B, 100, 5, lat=1.0)], NOW)
    merge_rows(rows, [{**_item(VIN_A, 50, 6, lat=2.0)}, {**_item(VIN_B, 200, 4, lat=3.0)}])
    assert (rows[VIN_A]["lat"], rows[VIN_B]["lat"]) == (2.0, 1.0)


def test_fleet_health_counts_online_battery_updates_versions_and_regions_from_plain_rows() -> None:
    rows = fleet_rows(
        [
            _item("V1", 10, 1, soc_pct=40.0, needs_update=True),
            _item("V2", 10, 1, soc_pct=61.0, firmware_version="2.0.0", region="eu-west"),
            _item("V3", 900, 1, soc_pct=None, region=None),
        ],
        NOW,
    )
    health = fleet_health(rows, NOW)
    assert (health.vehicles, health.online, health.needs_update) == (3, 2, 1)
    assert health.connectivity_pct == 66.67 and health.battery_average == 50.5
    assert health.versions == {"1.2.0": 2, "2.0.0": 1}
    assert health.regions == {"us-west": 1, "eu-west": 1}
    empty = fleet_health({}, NOW)
    assert (empty.vehicles, empty.connectivity_pct, empty.battery_average) == (0, None, None)


def test_the_dashboard_reads_the_snapshot_into_a_frame_the_fleet_pages_can_use() -> None:
    rows = fleet_rows([_item(VIN_A, 10, 3, soc_pct=5.0), _item(VIN_B, 600, 1)], NOW)
    document = decode(encode(rows, NOW.isoformat(), "hw", NOW.isoformat()))

    frame = snapshot_frame(document)

    assert list(frame.columns) == ["vin", *ROW_COLUMNS] and len(frame) == 2
    assert frame.attrs == {"as_of": NOW.isoformat(), "high_water": "hw", "rebuilt_at": NOW.isoformat()}
    assert str(frame["last_ts"].dt.tz) == "UTC"
    fleet = normalize_fleet(frame).set_index("vin")
    assert bool(fleet.loc[VIN_A, "online"]) and not fleet.loc[VIN_B, "online"]
    assert (fleet.loc[VIN_A, "battery"], fleet.loc[VIN_B, "status"]) == ("critical", "offline")
    assert math.isclose(fleet.loc[VIN_A, "lat"], 37.7)


def test_a_young_stacks_empty_snapshot_reads_as_an_empty_frame_not_as_an_unusable_one() -> None:
    # The first tick of a new stack writes a snapshot with no vehicle; the pages then read the table.
    frame = snapshot_frame(decode(encode({}, NOW.isoformat())))

    assert list(frame.columns) == ["vin", *ROW_COLUMNS] and len(frame) == 0
    assert len(normalize_fleet(frame)) == 0


def test_every_gzip_member_is_read_and_a_cut_short_document_is_refused() -> None:
    body = encode(fleet_rows([_item(VIN_A, 10, 1), _item(VIN_B, 10, 1)], NOW), "t")
    header, _, lines = gzip.decompress(body).partition(b"\n")
    first, second = lines.split(b"\n")[:2]
    members = b"".join(gzip.compress(part + b"\n") for part in (header, first, second))

    assert sorted(decode(members).rows()) == sorted([VIN_A, VIN_B])
    with pytest.raises(SnapshotFormatError, match="not gzip"):
        decode(members[:-3])
    with pytest.raises(SnapshotFormatError, match="more than 1,000 bytes once decompressed"):
        decode(members, limit=1000)
