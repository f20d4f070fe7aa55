"""Telemetry processor: one SQS batch of S3 "object created" notifications per invocation.

Minimal wiring: it decodes each notified object key and logs it. The ingest service replaces the
body of ``record_handler``; ``handler(event, context)`` stays the entrypoint.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote_plus

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

logger = Logger()
metrics = Metrics()
processor = BatchProcessor(event_type=EventType.SQS)


def notified_objects(body: str) -> list[tuple[str, str]]:
    """(bucket, key) of each S3 record in a notification body; keys arrive percent-encoded."""
    document = json.loads(body)
    # S3 sends an "s3:TestEvent" (no Records) when the notification is configured.
    return [
        (record["s3"]["bucket"]["name"], unquote_plus(record["s3"]["object"]["key"]))
        for record in document.get("Records", [])
    ]


def record_handler(record: SQSRecord) -> None:
    for bucket, key in notified_objects(record.body):
        logger.info("telemetry object received", extra={"bucket": bucket, "key": key})
        metrics.add_metric(name="ObjectsReceived", unit=MetricUnit.Count, value=1)


@metrics.log_metrics
@logger.inject_lambda_context
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return process_partial_response(
        event=event, record_handler=record_handler, processor=processor, context=context
    )
