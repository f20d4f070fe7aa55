"""The processor's batch: concurrent objects, per-item failures, one set of metrics per batch."""

from __future__ import annotations

import json

import pytest
from ingest_fakes import NOW, fake_ports, ndjson, record

from fleetota_core.domain.enrichment import ReleaseCatalog
from fleetota_core.errors import ValidationError
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

    pipeline.start_sqs_batch(messages)
    pipeline.finish_sqs_message("m0", messages[0]["body"])
    with pytest.raises(ValidationError):
        pipeline.finish_sqs_message("bad", "not an s3 notification")
    pipeline.finish_sqs_message("m1", messages[2]["body"])
    pipeline.finish_sqs_message("m2", messages[3]["body"])

    outcomes = pipeline.take_outcomes()
    assert sorted(o.ref.key for o in outcomes) == ["raw/0.ndjson.gz", "raw/1.ndjson.gz", "raw/2.ndjson.gz"]
    metrics = {name: value for name, _, value in batch_metrics(outcomes)}
    assert metrics["DataPoints"] == 6 and metrics["QuarantinedRecords"] == 0
    assert ports.ledger.counters["stored"] == 6
