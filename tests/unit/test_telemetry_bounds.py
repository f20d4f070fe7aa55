"""Bounds on what a vehicle may send: numbers that fit 2^53, timestamps inside the kept window, and a
future-dated reading that never holds back the readings after it."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, timedelta

import pytest
from ingest_fakes import NOW, fake_ports, ndjson, record, vin

from fleetota_core.adapters.dynamo_items import from_item
from fleetota_core.adapters.vehicle_state import to_attr
from fleetota_core.domain.bounds import MAX_FUTURE_SKEW, MAX_SAFE_INT, RAW_RETENTION_DAYS
from fleetota_core.domain.enrichment import ReleaseCatalog, StoredState, epoch_ms
from fleetota_core.infra_template import load_template
from fleetota_core.services.ingest.decode import decode_lines
from fleetota_core.services.ingest.stats import summarize
from fleetota_core.services.ingest.telemetry_object import ingest_object

CATALOG = ReleaseCatalog()
OTA = {"campaign_id": "c1", "deployment_id": "c1.v", "status": "DOWNLOADING", "target_version": "1.2.0"}
# Every numeric field of a reading, as a dotted path.
NUMERIC_FIELDS = [
    "seq", "position.lat", "position.lon", "position.speed_kph", "position.heading_deg",
    "battery.soc_pct", "battery.voltage_v", "battery.temp_c", "connectivity.signal_dbm",
    "odometer_km", "ota.attempt", "ota.progress_pct",
]  # fmt: skip


def _with(path: str, value: object) -> bytes:
    body = record(1, ota=dict(OTA))
    *parents, leaf = path.split(".")
    node = body
    for part in parents:
        node = node[part]
    node[leaf] = value
    return json.dumps(copy.deepcopy(body)).encode()


@pytest.mark.parametrize("path", NUMERIC_FIELDS)
@pytest.mark.parametrize("value", [10**40, -(10**40), 2**53])
def test_an_integer_beyond_2_53_in_any_numeric_field_is_quarantined_naming_the_field(path, value):
    decoded = decode_lines([_with(path, value)], NOW)
    assert decoded.records == []
    (line,) = decoded.quarantined
    assert line.reason == "impossible_value"
    assert line.detail.startswith(f"{path}:")


def test_the_largest_safe_seq_is_stored():
    assert len(decode_lines([_with("seq", MAX_SAFE_INT)], NOW).records) == 1


def test_a_seq_of_10_to_the_40_is_counted_quarantined_and_never_reaches_the_vehicles_table():
    ports = fake_ports()
    ref = ports.objects.put("raw/seq.ndjson.gz", ndjson(record(1, seq=10**40), record(2)))
    ingest_object(ref, ports, CATALOG, NOW)
    c = ports.ledger.counters
    assert (c["received"], c["stored"], c["quarantined__impossible_value"]) == (2, 1, 1)
    assert set(ports.vehicles.states) == {vin(2)}


def test_the_vehicle_codec_refuses_an_integer_dynamodb_readers_cannot_read_back():
    # moto stores 10**40; boto3's readers then trap decimal.Rounded. Refuse it before the write.
    with pytest.raises(ValueError, match="2\\^53"):
        to_attr(10**40)
    assert to_attr(MAX_SAFE_INT) == {"N": str(MAX_SAFE_INT)}


def test_a_number_past_dynamodb_precision_already_stored_is_read_exactly():
    # What an item written before the bound holds: scans and `firmware publish` must still read it.
    item = {"vin": {"S": vin(1)}, "last_seq": {"N": str(10**40)}, "lat": {"N": "37.5"}}
    assert from_item(item) == {"vin": vin(1), "last_seq": 10**40, "lat": 37.5}


def test_the_raw_retention_bound_is_the_telemetry_buckets_raw_expiry_in_the_template():
    rules = load_template()["Resources"]["TelemetryBucket"]["Properties"]["LifecycleConfiguration"]["Rules"]
    (raw,) = [rule for rule in rules if rule.get("Prefix") == "raw/" and "ExpirationInDays" in rule]
    assert raw["ExpirationInDays"] == RAW_RETENTION_DAYS


@pytest.mark.parametrize(
    ("ts", "reason"),
    [
        (datetime(1970, 1, 1, tzinfo=UTC), "expired_timestamp"),
        (NOW - timedelta(days=RAW_RETENTION_DAYS, seconds=1), "expired_timestamp"),
        (NOW + MAX_FUTURE_SKEW + timedelta(seconds=1), "future_timestamp"),
        (NOW + timedelta(seconds=290), "future_timestamp"),
    ],
)
def test_a_timestamp_outside_the_kept_window_is_quarantined_with_its_reason(ts, reason):
    decoded = decode_lines([json.dumps(record(1, ts=ts)).encode()], NOW)
    (line,) = decoded.quarantined
    assert line.reason == reason
    assert line.detail.startswith("ts:")
    if reason == "expired_timestamp":
        assert f"{RAW_RETENTION_DAYS} days" in line.detail


@pytest.mark.parametrize(
    "ts", [NOW - timedelta(days=RAW_RETENTION_DAYS) + timedelta(seconds=1), NOW + MAX_FUTURE_SKEW]
)
def test_timestamps_at_the_edges_of_the_window_are_stored(ts):
    assert len(decode_lines([json.dumps(record(1, ts=ts)).encode()], NOW).records) == 1


def test_a_1970_reading_does_not_reach_the_lag_figures():
    ports = fake_ports()
    body = ndjson(record(1, ts=datetime(1970, 1, 1, tzinfo=UTC)), record(2, ts=NOW - timedelta(seconds=2)))
    ingest_object(ports.objects.put("raw/old.ndjson.gz", body), ports, CATALOG, NOW)
    summary = summarize(ports.ledger.counters, dlq=0)
    assert summary["received"] == summary["stored"] + summary["quarantined"] == 2
    assert summary["quarantined_by_reason"] == {"expired_timestamp": 1}
    assert summary["lag_ms"]["mean"] == 2000.0


def test_a_reading_ahead_of_the_clock_does_not_hold_back_the_readings_after_it():
    # Given a vehicle whose clock runs 50 s fast (inside the skew bound), then is corrected
    ports = fake_ports()
    ahead = ports.objects.put("raw/ahead.ndjson.gz", ndjson(record(1, seq=1, ts=NOW + timedelta(seconds=50))))
    later = ports.objects.put(
        "raw/later.ndjson.gz", ndjson(record(1, seq=2, ts=NOW + timedelta(seconds=9), drive_state="parked"))
    )
    # When the second reading arrives 10 s after the first
    ingest_object(ahead, ports, CATALOG, NOW)
    ports.vehicles.now = NOW + timedelta(seconds=10)
    outcome = ingest_object(later, ports, CATALOG, NOW + timedelta(seconds=10))
    # Then it is the vehicle's state, not a stale reading
    state = ports.vehicles.states[vin(1)]
    assert (state.last_seq, state.drive_state) == (2, "parked")
    assert outcome.counters["stale_vehicle_readings"] == 0


def test_a_reading_ahead_of_the_clock_still_never_moves_the_vehicle_backwards():
    ports = fake_ports()
    ahead = ports.objects.put("raw/a.ndjson.gz", ndjson(record(1, seq=5, ts=NOW + timedelta(seconds=50))))
    backlog = ports.objects.put("raw/b.ndjson.gz", ndjson(record(1, seq=4, ts=NOW - timedelta(seconds=30))))
    ingest_object(ahead, ports, CATALOG, NOW)
    outcome = ingest_object(backlog, ports, CATALOG, NOW + timedelta(seconds=1))
    assert ports.vehicles.states[vin(1)].last_seq == 5
    assert outcome.counters["stale_vehicle_readings"] == 1


def test_a_future_state_already_in_the_table_yields_to_the_next_reading():
    # Given a state stored before readings were bounded, dated 290 s ahead
    ports = fake_ports()
    ingest_object(
        ports.objects.put("raw/seed.ndjson.gz", ndjson(record(1, seq=9, ts=NOW - timedelta(seconds=5)))),
        ports,
        CATALOG,
        NOW,
    )
    stored = ports.vehicles.states[vin(1)]
    poisoned_ts = NOW + timedelta(seconds=290)
    object.__setattr__(stored, "last_ts", poisoned_ts)
    assert ports.vehicles.get_many([vin(1)])[vin(1)].last_ts_ms == epoch_ms(poisoned_ts)
    # When an ordinary reading arrives
    ref = ports.objects.put("raw/next.ndjson.gz", ndjson(record(1, seq=10, ts=NOW - timedelta(seconds=1))))
    outcome = ingest_object(ref, ports, CATALOG, NOW)
    # Then it replaces the poisoned state
    assert ports.vehicles.states[vin(1)].last_seq == 10
    assert outcome.counters["vehicle_writes"] == 1


def test_is_newer_lets_any_reading_past_a_stored_state_dated_in_the_future():
    from fleetota_core.domain.enrichment import is_newer

    class Reading:
        ts = NOW - timedelta(minutes=1)
        seq = 1

    just_before = StoredState(last_ts_ms=epoch_ms(NOW - timedelta(seconds=1)), last_seq=0)
    ahead = StoredState(last_ts_ms=epoch_ms(NOW + timedelta(seconds=290)), last_seq=0)
    assert not is_newer(Reading, just_before, NOW)
    assert is_newer(Reading, ahead, NOW)


def test_a_reading_timed_to_the_microsecond_still_reaches_the_fleet_snapshot():
    # A vehicle sending microseconds must not fail the processor's snapshot delta.
    from fleetota_core.adapters.fleet_snapshot import decode, encode
    from fleetota_core.domain.enrichment import enrich
    from fleetota_core.services.ingest.fleet_health import states_rows

    line = json.dumps(record(1, ts="2026-11-26T19:59:58.123456Z")).encode()
    (reading,) = decode_lines([line], NOW).records
    rows = states_rows([enrich(reading, CATALOG, NOW)], NOW)
    (row,) = decode(encode(rows, NOW.isoformat())).rows().values()
    assert row["last_ts_ms"] == int(
        datetime.fromisoformat("2026-11-26T19:59:58.123+00:00").timestamp() * 1000
    )
