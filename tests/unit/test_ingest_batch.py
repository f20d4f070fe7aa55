"""The processor's batch: concurrent objects, per-item failures, one set of metrics per batch."""

from __future__ import annotations

import json

import pytest
from ingest_fakes import NOW, fake_ports, ndjson, record

from fleetota_core.domain.enrichment import ReleaseCatalog
from fleetota_core.errors import TransientAWSError, ValidationError
from fleetota_core.services.ingest.batch import TelemetryPipeline, batch_metrics


def s3_body(key: str) -> str:
    s3 = {"bucket": {"name": "telemetry"}, "object": {"key": key, "eTag": key}}
    return json.dumps({"Records": [{"eventSource": "aws:s3", "eventName": "ObjectCreated:Put", "s3": s3}]})


def test_a_bad_message_fails_alone_while_the_others_of_its_batch_are_processed():
    ports = fake_ports()
    pipeline = TelemetryPipeline(ports, lambda: ReleaseCatalog(), clock=lambda: NOW)
    for n in range(3):
        ports.objects.put(f"raw/{n}.ndjson.gz", ndjson(record(n), record(n + 10)))
    messages = [{"messageId": f"m{n}", "body": s3_body(f"raw/{n}.ndjson.gz")} for n in range(3)]
    messages.insert(1, {"messageId": "bad", "body": "not an s3 notification"})

    pipeline.process_sqs_batch(messages)
    pipeline.finish_sqs_message("m0")
    with pytest.raises(ValidationError):
        pipeline.finish_sqs_message("bad")
    pipeline.finish_sqs_message("m1")
    pipeline.finish_sqs_message("m2")

    outcomes = pipeline.take_outcomes()
    assert sorted(o.ref.key for o in outcomes) == ["raw/0.ndjson.gz", "raw/1.ndjson.gz", "raw/2.ndjson.gz"]
    metrics = {name: value for name, _, value in batch_metrics(outcomes)}
    assert metrics["DataPoints"] == 6 and metrics["QuarantinedRecords"] == 0
    assert ports.ledger.counters["stored"] == 6


def _batch(ports, count: int, prefix: str = "raw") -> list[dict[str, str]]:
    for n in range(count):
        ports.objects.put(f"{prefix}/{n}.ndjson.gz", ndjson(record(n)))
    return [{"messageId": f"m{n}", "body": s3_body(f"{prefix}/{n}.ndjson.gz")} for n in range(count)]


def test_a_batch_of_objects_costs_one_ledger_read_and_one_ledger_write_not_one_each_per_object():
    ports = fake_ports()
    pipeline = TelemetryPipeline(ports, lambda: ReleaseCatalog(), clock=lambda: NOW)
    messages = _batch(ports, 5)

    pipeline.process_sqs_batch(messages)
    for message in messages:
        pipeline.finish_sqs_message(message["messageId"])

    assert (ports.ledger.reads, ports.ledger.writes) == (1, 1)
    assert len(ports.ledger.markers) == 5 and ports.ledger.counters["stored"] == 5
    assert ports.ledger.counters["objects"] == 5


def test_an_object_committed_before_or_delivered_twice_in_the_batch_counts_once():
    ports = fake_ports()
    pipeline = TelemetryPipeline(ports, lambda: ReleaseCatalog(), clock=lambda: NOW)
    messages = _batch(ports, 3)
    pipeline.process_sqs_batch(messages[:1])
    pipeline.finish_sqs_message("m0")

    again = [*messages, {"messageId": "m1-again", "body": messages[1]["body"]}]
    pipeline.process_sqs_batch(again)
    for message in again:
        pipeline.finish_sqs_message(message["messageId"])

    assert ports.ledger.counters["stored"] == 3 and ports.ledger.counters["duplicate_objects"] == 2
    assert ports.ledger.counters["duplicate_records"] == 1  # m0's earlier delivery received 1 record


def test_a_failed_commit_fails_every_message_it_held_and_their_retry_counts_them_once():
    ports = fake_ports()
    pipeline = TelemetryPipeline(ports, lambda: ReleaseCatalog(), clock=lambda: NOW)
    messages = _batch(ports, 3)
    ports.ledger.fail_commits = 1

    pipeline.process_sqs_batch(messages)
    for message in messages:
        with pytest.raises(TransientAWSError):
            pipeline.finish_sqs_message(message["messageId"])
    assert pipeline.take_outcomes() == [] and ports.ledger.counters["stored"] == 0

    pipeline.process_sqs_batch(messages)  # SQS redelivers them
    for message in messages:
        pipeline.finish_sqs_message(message["messageId"])
    assert ports.ledger.counters["stored"] == 3 and ports.ledger.counters["duplicate_objects"] == 0


def test_an_object_that_cannot_be_read_fails_alone_and_is_not_committed():
    ports = fake_ports()
    # One thread, so the first object read is the one that fails.
    pipeline = TelemetryPipeline(ports, lambda: ReleaseCatalog(), clock=lambda: NOW, object_threads=1)
    messages = _batch(ports, 2)
    ports.objects.failures.append(TransientAWSError("s3: SlowDown (retryable)"))
    messages.insert(0, {"messageId": "slow", "body": s3_body("raw/slow.ndjson.gz")})
    ports.objects.put("raw/slow.ndjson.gz", ndjson(record(9)))

    pipeline.process_sqs_batch(messages)
    pipeline.finish_sqs_message("m0")
    pipeline.finish_sqs_message("m1")
    with pytest.raises(TransientAWSError):
        pipeline.finish_sqs_message("slow")
    assert sorted(k for k, _ in ports.ledger.markers) == ["raw/0.ndjson.gz", "raw/1.ndjson.gz"]


def _received(messages: list[dict[str, str]], count: int) -> list[dict[str, object]]:
    return [{**m, "attributes": {"ApproximateReceiveCount": str(count)}} for m in messages]


def _deliver(pipeline: TelemetryPipeline, messages: list[dict[str, object]]) -> None:
    """One invocation of the batch, every message of which must succeed."""
    pipeline.process_sqs_batch(messages)
    for message in messages:
        pipeline.finish_sqs_message(str(message["messageId"]))


def test_first_deliveries_are_committed_without_a_ledger_read():
    ports = fake_ports()
    pipeline = TelemetryPipeline(ports, lambda: ReleaseCatalog(), clock=lambda: NOW)
    messages = _received(_batch(ports, 4), 1)

    _deliver(pipeline, messages)

    assert (ports.ledger.reads, ports.ledger.writes) == (0, 1)
    assert ports.ledger.counters["stored"] == 4 and ports.ledger.counters["duplicate_objects"] == 0


def test_a_redelivered_message_is_looked_up_first_and_costs_no_work_when_committed_before():
    ports = fake_ports()
    pipeline = TelemetryPipeline(ports, lambda: ReleaseCatalog(), clock=lambda: NOW)
    messages = _batch(ports, 2)
    _deliver(pipeline, _received(messages, 1))
    reads_before, gets_before = ports.ledger.reads, ports.objects.reads

    # The invocation committed, then timed out before SQS deleted the messages: they come back.
    _deliver(pipeline, _received(messages, 2))

    assert ports.ledger.reads == reads_before + 1
    assert ports.objects.reads == gets_before  # known from the ledger: not read again
    assert ports.ledger.counters["stored"] == 2 and ports.ledger.counters["duplicate_objects"] == 2
    assert ports.ledger.counters["duplicate_records"] == 2


def test_an_s3_event_sent_twice_is_caught_at_the_commit_and_counted_once():
    ports = fake_ports()
    pipeline = TelemetryPipeline(ports, lambda: ReleaseCatalog(), clock=lambda: NOW)
    messages = _received(_batch(ports, 2), 1)
    _deliver(pipeline, messages)
    pipeline.take_outcomes()

    # S3 delivers at least once: a second event for raw/1 is a new SQS message, received once.
    twice = [
        {"messageId": "m1-event-again", "body": messages[1]["body"], "attributes": messages[1]["attributes"]}
    ]
    pipeline.process_sqs_batch(twice)
    pipeline.finish_sqs_message("m1-event-again")

    assert ports.ledger.counters["stored"] == 2 and ports.ledger.counters["duplicate_objects"] == 1
    assert ports.ledger.counters["duplicate_records"] == 1  # what the first delivery received
    outcomes = pipeline.take_outcomes()
    metrics = {name: value for name, _, value in batch_metrics(outcomes)}
    assert (metrics["DuplicateObjects"], metrics["DataPoints"]) == (1, 0)
