"""The ingest use case on in-memory fakes: accounting, duplicates, order, quarantine, retries."""

from __future__ import annotations

import gzip
import json
from datetime import timedelta

import pytest
from ingest_fakes import NOW, fake_ports, ndjson, record, signed, vin

from fleetota_core.adapters.vehicle_state import state_attributes
from fleetota_core.domain.enrichment import ReleaseCatalog, ReleaseSummary
from fleetota_core.domain.vehicle import Vehicle
from fleetota_core.domain.vehicle_health import HealthReading
from fleetota_core.errors import TransientAWSError
from fleetota_core.services.ingest.telemetry_object import ingest_object, lag_bucket, newest_per_vehicle

CATALOG = ReleaseCatalog([ReleaseSummary("1.2.0", frozenset({"Model 3"}), frozenset())])


def ingest(ports, ref, now=NOW):
    return ingest_object(ref, ports, CATALOG, now)


def test_good_and_bad_lines_in_one_object_add_up_and_every_reason_is_recorded():
    ports = fake_ports()
    body = ndjson(
        record(1),
        b"{not json",
        record(2, position={"lat": 95.0, "lon": 0.0, "speed_kph": 0.0, "heading_deg": 0.0}),
        record(3, vin="5YJ3E1EA0PF000003"),
        record(4, seq="many"),
        record(5, ts=(NOW + timedelta(hours=2)).isoformat()),
        b"x" * 20_000,
        record(6),
    )
    ref = ports.objects.put("raw/dt=2026-11-26/hour=20/a.ndjson.gz", body)

    outcome = ingest(ports, ref)

    c = ports.ledger.counters
    assert c["received"] == 8 and c["stored"] == 2 and c["quarantined"] == 6
    assert c["received"] == c["stored"] + c["quarantined"]
    reasons = {line.reason for line in ports.quarantine.lines[ref.key]}
    assert reasons == {
        "malformed_json",
        "impossible_value",
        "invalid_vin",
        "schema_violation",
        "future_timestamp",
        "line_too_large",
    }
    assert sum(v for k, v in c.items() if k.startswith("quarantined__")) == 6
    assert set(ports.vehicles.states) == {vin(1), vin(6)}
    assert outcome.stored == 2


def test_delivering_the_same_object_twice_changes_no_count_and_no_state():
    ports = fake_ports()
    ref = ports.objects.put("raw/b.ndjson.gz", ndjson(record(1), record(2), b"oops"))
    ingest(ports, ref)
    before = (dict(ports.ledger.counters), dict(ports.vehicles.states), ports.vehicles.writes)

    again = ingest(ports, ref)

    assert again.duplicate
    counters = dict(ports.ledger.counters)
    assert counters.pop("duplicate_objects") == 1 and counters.pop("duplicate_records") == 3
    assert (counters, dict(ports.vehicles.states), ports.vehicles.writes) == before


def test_a_reordered_object_leaves_each_vehicle_at_its_newest_reading():
    ports = fake_ports()
    readings = [record(1, seq=s, ts=NOW - timedelta(seconds=60 - s)) for s in range(10)]
    ref = ports.objects.put("raw/c.ndjson.gz", ndjson(*reversed(readings)))
    ingest(ports, ref)
    assert ports.vehicles.states[vin(1)].last_seq == 9


def test_a_late_object_never_moves_a_vehicle_backwards():
    ports = fake_ports()
    new = ports.objects.put("raw/new.ndjson.gz", ndjson(record(1, seq=50, ts=NOW - timedelta(seconds=1))))
    old = ports.objects.put(
        "raw/old.ndjson.gz",
        ndjson(record(1, seq=10, ts=NOW - timedelta(minutes=30), drive_state="parked")),
    )
    ingest(ports, new)
    outcome = ingest(ports, old)
    state = ports.vehicles.states[vin(1)]
    assert (state.last_seq, state.drive_state) == (50, "driving")
    assert outcome.counters["stale_vehicle_readings"] == 1


def test_same_timestamp_is_ordered_by_seq():
    records = [record(1, seq=4, ts=NOW), record(1, seq=7, ts=NOW), record(1, seq=5, ts=NOW)]
    ports = fake_ports()
    ingest(ports, ports.objects.put("raw/d.ndjson.gz", ndjson(*records)))
    assert ports.vehicles.states[vin(1)].last_seq == 7


def test_an_immaterial_reading_is_not_written_but_its_state_goes_to_the_snapshot_delta():
    ports = fake_ports()
    first = ports.objects.put("raw/1.ndjson.gz", ndjson(record(1, seq=1, ts=NOW - timedelta(minutes=30))))
    # Half an hour later, same place and state: no DynamoDB write (no heartbeat, issue #16) ...
    second = ports.objects.put("raw/2.ndjson.gz", ndjson(record(1, seq=2, ts=NOW - timedelta(seconds=10))))
    ingest(ports, first, now=NOW - timedelta(minutes=30))
    outcome = ingest(ports, second)
    assert ports.vehicles.writes == 1
    assert outcome.counters["vehicle_writes_skipped"] == 1
    assert outcome.stored == 1  # accepted and counted, just not rewritten
    # ... but "last seen" still moves: the state is handed to the fleet snapshot's delta.
    assert [(s.vin, s.last_seq, s.last_ts) for s in outcome.states] == [
        (vin(1), 2, NOW - timedelta(seconds=10))
    ]


def test_a_stale_reading_goes_neither_to_the_table_nor_to_the_snapshot_delta():
    ports = fake_ports()
    newer = ports.objects.put("raw/1.ndjson.gz", ndjson(record(1, seq=5, ts=NOW - timedelta(seconds=5))))
    older = ports.objects.put("raw/2.ndjson.gz", ndjson(record(1, seq=4, ts=NOW - timedelta(seconds=15))))
    ingest(ports, newer)
    outcome = ingest(ports, older)
    assert outcome.states == [] and outcome.counters["stale_vehicle_readings"] == 1


HEALTH = {
    "observed_s": 7200,
    "dtc_count": 3,
    "reboots": 0,
    "link_drops": 1,
    "parked_s": 3600,
    "parked_drain_pct": 0.3,
    "last_dtc": None,
}


def test_health_counters_are_stored_and_a_new_fault_code_is_written_within_the_heartbeat():
    ports = fake_ports()
    later = {**HEALTH, "observed_s": 7205, "parked_drain_pct": 0.31}
    readings = [
        record(1, seq=1, ts=NOW - timedelta(seconds=20), health=HEALTH),
        record(1, seq=2, ts=NOW - timedelta(seconds=15), health=later),  # only time passed
        record(
            1, seq=3, ts=NOW - timedelta(seconds=10), health={**later, "dtc_count": 4, "last_dtc": "P0A80"}
        ),
    ]
    outcomes = [
        ingest(ports, ports.objects.put(f"raw/h{i}.ndjson.gz", ndjson(r))) for i, r in enumerate(readings)
    ]
    assert [o.counters["vehicle_writes"] for o in outcomes] == [1, 0, 1]
    stored = ports.vehicles.states[vin(1)].health
    assert (stored.dtc_count, stored.observed_s) == (4, 7205)


def test_the_vehicles_table_item_carries_the_counters_the_campaign_side_reads():
    ports = fake_ports()
    ingest(ports, ports.objects.put("raw/h.ndjson.gz", ndjson(record(1, health=HEALTH))))
    state = ports.vehicles.states[vin(1)]
    item = {"vin": state.vin, **state_attributes(state, NOW)}
    assert item["health_events"] == 4
    vehicle = Vehicle.model_validate(item)
    assert vehicle.health == HealthReading(7200, 3, 0, 1, 3600, 0.3)
    assert Vehicle.model_validate({**item, "health_dtc": None}).health is None


def test_a_corrupt_gzip_object_is_quarantined_by_reference_and_acknowledged():
    ports = fake_ports()
    ref = ports.objects.put("raw/e.ndjson.gz", gzip.compress(b"{}\n" * 100)[:-20])
    outcome = ingest(ports, ref)
    assert outcome.object_quarantined == "corrupt_gzip"
    assert ports.quarantine.objects[ref.key][0] == "corrupt_gzip"
    assert ports.ledger.counters["objects_quarantined__corrupt_gzip"] == 1
    # Processed means acknowledged: a second delivery is a duplicate, not another attempt.
    assert ingest(ports, ref).duplicate


def test_content_that_is_not_gzip_under_a_gz_key_is_quarantined():
    ports = fake_ports()
    ref = ports.objects.put("raw/f.ndjson.gz", b"hello, not gzip")
    assert ingest(ports, ref).object_quarantined == "corrupt_gzip"


def test_a_single_record_json_object_is_accepted_even_pretty_printed():
    ports = fake_ports()
    ref = ports.objects.put("raw/one.json", json.dumps(record(7), indent=2).encode())
    outcome = ingest(ports, ref)
    assert (outcome.counters["received"], outcome.stored) == (1, 1)
    assert vin(7) in ports.vehicles.states


def test_a_transient_error_fails_the_item_and_the_retry_recovers_exactly_once():
    ports = fake_ports()
    ref = ports.objects.put("raw/g.ndjson.gz", ndjson(record(1), record(2)))
    ports.ledger.fail_commits = 1
    with pytest.raises(TransientAWSError):
        ingest(ports, ref)
    assert ports.ledger.counters["received"] == 0

    outcome = ingest(ports, ref)

    assert not outcome.duplicate
    assert ports.ledger.counters["received"] == 2 and ports.ledger.counters["stored"] == 2


def test_a_read_failure_propagates_so_the_queue_retries():
    ports = fake_ports()
    ref = ports.objects.put("raw/h.ndjson.gz", ndjson(record(1)))
    ports.objects.failures.append(TransientAWSError("S3 SlowDown"))
    with pytest.raises(TransientAWSError):
        ingest(ports, ref)
    assert ingest(ports, ref).stored == 1


def test_a_vanished_object_is_quarantined_by_reference():
    ports = fake_ports()
    from fleetota_core.services.ingest.ports import ObjectRef

    outcome = ingest(ports, ObjectRef("telemetry", "raw/gone.ndjson.gz", etag="x"))
    assert outcome.object_quarantined == "object_missing"


def test_ota_reports_go_to_the_deployments_in_order_and_their_counts_are_kept():
    ports = fake_ports()
    ota = {"campaign_id": "c1", "deployment_id": "c1.x", "target_version": "1.2.0"}
    body = ndjson(
        signed(record(1, seq=3, ts=NOW - timedelta(seconds=1), ota={**ota, "status": "INSTALLING"})),
        signed(record(1, seq=2, ts=NOW - timedelta(seconds=5), ota={**ota, "status": "DOWNLOADING"})),
        signed(record(2, seq=1, ota={**ota, "status": "RECEIVED"})),
        record(3, seq=1),
    )
    outcome = ingest(ports, ports.objects.put("raw/i.ndjson.gz", body))
    sent = ports.ota_sink.reports
    assert [r.ota.status for r in sent if r.vin == vin(1)] == ["DOWNLOADING", "INSTALLING"]
    assert [r.ota.status for r in sent if r.vin == vin(2)] == ["RECEIVED"]
    assert len(sent) == 3
    assert outcome.counters["ota_reports"] == 3
    assert outcome.counters["ota_illegal_transitions"] == 1
    assert ports.vehicles.states[vin(1)].ota_status == "INSTALLING"


def test_lag_is_bucketed_for_percentiles():
    assert lag_bucket(90) == "lag_le_100"
    assert lag_bucket(4999) == "lag_le_5000"
    assert lag_bucket(10**9) == "lag_le_inf"


def test_newest_per_vehicle_keeps_one_reading_per_vin():
    from fleetota_core.services.ingest.decode import decode_lines

    lines = [json.dumps(record(n % 3, seq=n, ts=NOW - timedelta(seconds=100 - n))).encode() for n in range(9)]
    newest = newest_per_vehicle(decode_lines(lines, NOW).records)
    assert {v: r.seq for v, r in newest.items()} == {vin(0): 6, vin(1): 7, vin(2): 8}


def test_object_lag_runs_from_the_s3_event_time_and_is_histogrammed():
    from dataclasses import replace

    from fleetota_core.services.ingest.stats import summarize

    ports = fake_ports()
    ref = replace(
        ports.objects.put("raw/j.ndjson.gz", ndjson(record(1))),
        event_time=(NOW - timedelta(milliseconds=1500)).isoformat().replace("+00:00", "Z"),
    )
    outcome = ingest(ports, ref)
    assert outcome.object_lag_ms == 1500
    lag = summarize(ports.ledger.counters, dlq=0)["object_lag_ms"]
    assert lag["mean"] == 1500 and 1000 < lag["p50"] <= 2000
