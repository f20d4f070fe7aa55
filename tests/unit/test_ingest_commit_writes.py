"""An invocation's vehicle writes ride in its ledger commit: one transaction, all or nothing."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest
from ingest_fakes import NOW, fake_ports, ndjson, record, vin
from test_ingest_batch import s3_body

from fleetota_core.domain.enrichment import ReleaseCatalog
from fleetota_core.errors import TransientAWSError
from fleetota_core.services.ingest.batch import TelemetryPipeline


def _run(ports, objects: dict[str, bytes]) -> TelemetryPipeline:
    """One SQS batch of first deliveries, one message an object; every message must succeed."""
    pipeline = TelemetryPipeline(ports, lambda: ReleaseCatalog(), clock=lambda: NOW, object_threads=1)
    messages = []
    for key, body in objects.items():
        ports.objects.put(key, body)
        messages.append(
            {"messageId": key, "body": s3_body(key), "attributes": {"ApproximateReceiveCount": "1"}}
        )
    pipeline.process_sqs_batch(messages)
    for message in messages:
        pipeline.finish_sqs_message(message["messageId"])
    return pipeline


def test_the_material_changes_of_a_batch_are_written_by_its_one_commit():
    ports = fake_ports()
    objects = {f"raw/{n}": ndjson(record(n, changed=True), record(n + 10)) for n in range(3)}

    _run(ports, objects)

    assert ports.ledger.writes == 1  # one transaction: 3 markers, 6 vehicle writes, the counters
    assert set(ports.vehicles.states) == {vin(n) for n in (0, 1, 2, 10, 11, 12)}
    assert ports.vehicles.update_calls == [[vin(0), vin(1), vin(2)]]  # the flagged ones, updated
    assert ports.ledger.counters["vehicle_writes"] == 6
    assert ports.vehicles.committed_writes[-1][1] == []


def test_a_write_a_newer_stored_state_refuses_counts_as_stale_and_the_rest_commit():
    ports = fake_ports()
    _run(ports, {"raw/first": ndjson(record(1, seq=5), record(2, seq=5))})
    # Another processor stores a newer reading of vehicle 1 meanwhile.
    newer = replace(ports.vehicles.states[vin(1)], last_seq=50)
    ports.vehicles.states[vin(1)] = newer

    writes_before = ports.ledger.writes
    _run(ports, {"raw/second": ndjson(record(1, seq=6, changed=True), record(2, seq=6, changed=True))})

    assert ports.ledger.writes == writes_before + 2  # refused for vehicle 1, then committed without it
    assert ports.vehicles.states[vin(1)] is newer
    assert ports.vehicles.states[vin(2)].last_seq == 6
    assert ports.ledger.counters["stale_vehicle_readings"] == 1
    assert ports.ledger.counters["vehicle_writes"] == 2 + 1  # the first object's two, then vehicle 2
    assert ports.vehicles.committed_writes[-1] == ([vin(2)], [vin(1)])


def test_a_vehicle_in_two_objects_of_a_batch_is_written_once_by_the_commit_newest_last():
    ports = fake_ports()
    older, newer = NOW - timedelta(seconds=20), NOW - timedelta(seconds=10)

    _run(
        ports,
        {
            "raw/b": ndjson(record(1, seq=2, ts=newer, drive_state="parked")),
            "raw/a": ndjson(record(1, seq=1, ts=older)),
        },
    )

    # The older write is made first, alone; the transaction holds one write of the vehicle (DynamoDB
    # refuses two operations on one item in a transaction).
    carried, _ = ports.vehicles.committed_writes[-1]
    assert carried == [vin(1)] and ports.vehicles.writes == 2
    assert (ports.vehicles.states[vin(1)].last_seq, ports.vehicles.states[vin(1)].drive_state) == (
        2,
        "parked",
    )
    assert ports.ledger.counters["vehicle_writes"] == 2


def test_writes_past_the_transaction_s_100_items_are_written_first_by_themselves():
    ports = fake_ports()
    # 10 objects of 10 new vehicles each: 100 writes, 10 markers and the counters would be 111 items.
    objects = {f"raw/{o}": ndjson(*(record(10 * o + n) for n in range(10))) for o in range(10)}

    _run(ports, objects)

    assert ports.ledger.writes == 1
    assert len(ports.vehicles.states) == 100 and ports.ledger.counters["vehicle_writes"] == 100
    carried, refused = ports.vehicles.committed_writes[-1]
    assert (len(carried), refused) == (100 - 10 - 1, [])


def test_an_object_another_delivery_committed_first_drops_its_writes_from_the_commit():
    ports = fake_ports()
    _run(ports, {"raw/dup": ndjson(record(1, seq=1))})
    ports.vehicles.states.clear()  # so that only this commit could write vehicle 1 again

    # S3 sent raw/dup's event again (a first delivery, not looked up) beside a new object.
    _run(ports, {"raw/dup": ndjson(record(1, seq=1)), "raw/new": ndjson(record(2, seq=1))})

    assert set(ports.vehicles.states) == {vin(2)}
    assert ports.ledger.counters["duplicate_objects"] == 1
    assert ports.ledger.counters["stored"] == 2  # raw/dup's record counted once, and raw/new's


def test_a_failed_commit_leaves_its_flagged_changes_to_the_retry_not_to_the_write_bound():
    ports = fake_ports()
    ports.ledger.fail_commits = 1
    body = ndjson(record(1, seq=1, changed=True))
    ports.objects.put("raw/a", body)
    pipeline = TelemetryPipeline(ports, lambda: ReleaseCatalog(), clock=lambda: NOW)
    message = {"messageId": "a", "body": s3_body("raw/a"), "attributes": {"ApproximateReceiveCount": "1"}}
    pipeline.process_sqs_batch([message])
    with pytest.raises(TransientAWSError):
        pipeline.finish_sqs_message("a")
    assert vin(1) not in ports.vehicles.states

    # SQS delivers it again within the bound's 30 s window: the change is written, not deferred.
    pipeline.process_sqs_batch([{**message, "attributes": {"ApproximateReceiveCount": "2"}}])
    pipeline.finish_sqs_message("a")

    assert ports.vehicles.states[vin(1)].last_seq == 1
    assert (
        ports.ledger.counters["vehicle_writes"] == 1 and ports.ledger.counters["vehicle_writes_deferred"] == 0
    )


def test_a_vehicle_three_objects_changed_is_written_oldest_first_whatever_the_objects_order():
    ports = fake_ports()
    at = [NOW - timedelta(seconds=s) for s in (30, 20, 10)]
    states = ("parked", "driving", "charging")

    _run(
        ports,
        {
            "raw/3": ndjson(record(1, seq=3, ts=at[2], drive_state=states[2])),
            "raw/2": ndjson(record(1, seq=2, ts=at[1], drive_state=states[1])),
            "raw/1": ndjson(record(1, seq=1, ts=at[0], drive_state=states[0])),
        },
    )

    # Seq 1, then 2 by themselves, then 3 in the commit: none refused as older than the stored state.
    assert ports.ledger.counters["stale_vehicle_readings"] == 0
    assert ports.ledger.counters["vehicle_writes"] == 3
    assert (ports.vehicles.states[vin(1)].last_seq, ports.vehicles.states[vin(1)].drive_state) == (
        3,
        "charging",
    )
