"""S3 notifications in the shapes AWS sends them, directly and inside SQS messages."""

from __future__ import annotations

import json

import pytest

from fleetota_core.errors import ValidationError
from fleetota_core.services.ingest.events import (
    is_direct_s3_event,
    refs_from_s3_event,
    refs_from_sqs_body,
)


def s3_event(key: str, name: str = "ObjectCreated:Put") -> dict:
    return {
        "Records": [
            {
                "eventVersion": "2.1",
                "eventSource": "aws:s3",
                "awsRegion": "us-east-1",
                "eventTime": "2026-11-26T20:00:00.000Z",
                "eventName": name,
                "s3": {
                    "s3SchemaVersion": "1.0",
                    "bucket": {
                        "name": "fleetota-local-telemetry",
                        "arn": "arn:aws:s3:::fleetota-local-telemetry",
                    },
                    "object": {"key": key, "size": 1234, "eTag": "abc123", "sequencer": "0062E99A88DC407460"},
                },
            }
        ]
    }


def test_keys_are_percent_decoded_once():
    (ref,) = refs_from_s3_event(s3_event("raw/dt%3D2026-11-26/hour%3D20/batch+0001%2B1.ndjson.gz"))
    assert ref.key == "raw/dt=2026-11-26/hour=20/batch 0001+1.ndjson.gz"
    assert (ref.bucket, ref.etag, ref.sequencer, ref.size) == (
        "fleetota-local-telemetry",
        "abc123",
        "0062E99A88DC407460",
        1234,
    )


def test_an_s3_notification_inside_an_sqs_body_names_its_objects():
    (ref,) = refs_from_sqs_body(json.dumps(s3_event("raw/a.ndjson.gz")))
    assert ref.key == "raw/a.ndjson.gz" and ref.version_tag == "abc123"


def test_the_s3_test_event_and_non_create_events_name_no_object():
    assert refs_from_sqs_body(json.dumps({"Service": "Amazon S3", "Event": "s3:TestEvent"})) == []
    assert refs_from_s3_event(s3_event("raw/a.gz", name="ObjectRemoved:Delete")) == []


def test_a_direct_s3_event_is_recognised_and_an_sqs_event_is_not():
    assert is_direct_s3_event(s3_event("raw/a.gz"))
    assert not is_direct_s3_event({"Records": [{"eventSource": "aws:sqs", "body": "{}"}]})


@pytest.mark.parametrize(
    "body", ["not json", "[1, 2]", json.dumps({"Records": [{"eventSource": "aws:sns"}]})]
)
def test_a_message_that_is_not_an_s3_notification_is_a_validation_error(body):
    with pytest.raises(ValidationError):
        refs_from_sqs_body(body)
