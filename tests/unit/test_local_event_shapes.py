"""The runtime builds events with the same shape as AWS's samples in tests/events."""

from __future__ import annotations

from urllib.parse import unquote_plus

from fleetota_core.local.lambda_events import scheduled_event, sqs_event
from tests.events import load_event


def _shape(value: object) -> object:
    if isinstance(value, dict):
        return {key: _shape(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_shape(item) for item in value[:1]]
    return type(value).__name__


def test_sqs_events_have_the_shape_lambda_delivers():
    sample = load_event("sqs_s3_object_created")
    message = {
        "MessageId": "m-1",
        "ReceiptHandle": "rh",
        "Body": sample["Records"][0]["body"],
        "MD5OfBody": "md5",
        "Attributes": {
            "ApproximateReceiveCount": "2",
            "SentTimestamp": "1",
            "SenderId": "s",
            "ApproximateFirstReceiveTimestamp": "2",
        },
    }
    built = sqs_event([message], sample["Records"][0]["eventSourceARN"], "us-east-1")
    assert _shape(built) == _shape(sample)
    assert built["Records"][0]["attributes"]["ApproximateReceiveCount"] == "2"


def test_message_attributes_use_lambdas_lower_camel_case():
    message = {
        "MessageId": "m",
        "ReceiptHandle": "r",
        "Body": "{}",
        "MessageAttributes": {"kind": {"StringValue": "batch", "DataType": "String"}},
    }
    attributes = sqs_event([message], "arn", "us-east-1")["Records"][0]["messageAttributes"]
    assert attributes["kind"]["stringValue"] == "batch" and attributes["kind"]["dataType"] == "String"


def test_scheduled_events_have_the_shape_eventbridge_delivers():
    sample = load_event("scheduled_event")
    built = scheduled_event(sample["resources"][0], "us-east-1")
    assert _shape(built) == _shape(sample)
    assert built["detail-type"] == "Scheduled Event" and built["time"].endswith("Z")


def test_the_sample_s3_key_decodes_with_unquote_plus():
    import json

    body = json.loads(load_event("sqs_s3_object_created")["Records"][0]["body"])
    key = body["Records"][0]["s3"]["object"]["key"]
    assert unquote_plus(key) == "raw/dt=2026-11-26/hour=09/batch 0001.ndjson.gz"
