"""Read the objects an S3 notification names, in the shapes AWS sends them.

Two shapes: an S3 notification inside an SQS message body (the queue path) and a direct S3 event
(a Lambda subscribed to the bucket). Keys arrive percent-encoded (``dt%3D2026-11-26``), so they are
decoded with ``unquote_plus`` exactly once, here.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import unquote_plus

from fleetota_core.errors import ValidationError
from fleetota_core.services.ingest.ports import ObjectRef

OBJECT_CREATED_PREFIX = "ObjectCreated:"


def refs_from_s3_event(event: dict[str, Any]) -> list[ObjectRef]:
    """The created objects in an S3 event; test events and other event names name none."""
    if event.get("Event") == "s3:TestEvent":
        return []
    refs = []
    for record in event.get("Records", []):
        if record.get("eventSource") != "aws:s3":
            raise ValidationError(f"not an S3 event record: eventSource={record.get('eventSource')!r}")
        if not str(record.get("eventName", "")).startswith(OBJECT_CREATED_PREFIX):
            continue
        s3 = record["s3"]
        obj = s3["object"]
        refs.append(
            ObjectRef(
                bucket=s3["bucket"]["name"],
                key=unquote_plus(obj["key"]),
                etag=str(obj.get("eTag") or obj.get("etag") or "").strip('"'),
                sequencer=str(obj.get("sequencer") or ""),
                size=obj.get("size"),
                event_time=str(record.get("eventTime") or ""),
            )
        )
    return refs


def refs_from_sqs_body(body: str) -> list[ObjectRef]:
    """The objects named by one SQS message whose body is an S3 notification."""
    try:
        event = json.loads(body)
    except json.JSONDecodeError as exc:
        raise ValidationError(f"SQS message body is not JSON: {exc}") from exc
    if not isinstance(event, dict):
        raise ValidationError("SQS message body is not an S3 notification object")
    return refs_from_s3_event(event)


def is_direct_s3_event(event: dict[str, Any]) -> bool:
    records = event.get("Records") or []
    return bool(records) and records[0].get("eventSource") == "aws:s3"
