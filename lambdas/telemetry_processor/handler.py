"""Telemetry processor: an SQS batch of S3 "object created" notifications (or a direct S3 event).

Each SQS message is one item: a transient AWS failure fails only that item (partial batch response),
so SQS retries it and finally moves it to the DLQ. Metrics are published once per batch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response

from fleetota_core.services.ingest.batch import batch_metrics, telemetry_pipeline
from fleetota_core.services.ingest.events import is_direct_s3_event, refs_from_s3_event
from fleetota_core.settings import Settings

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

logger = Logger()
# service="": the alarms watch dimensionless series, so POWERTOOLS_SERVICE_NAME must add no dimension.
metrics = Metrics(namespace="Telemetry", service="")
processor = BatchProcessor(event_type=EventType.SQS)


@metrics.log_metrics
@logger.inject_lambda_context
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    telemetry = telemetry_pipeline(Settings())
    telemetry.begin_batch()
    try:
        if is_direct_s3_event(event):
            return {"objects": len(telemetry.ingest(refs_from_s3_event(event)))}

        telemetry.process_sqs_batch(event.get("Records", []))

        def record_handler(record: SQSRecord) -> None:
            telemetry.finish_sqs_message(record.message_id)

        return process_partial_response(event, record_handler, processor, context)
    finally:
        outcomes = telemetry.take_outcomes()
        delta_failed = not telemetry.write_snapshot_delta(outcomes)
        for name, unit, value in batch_metrics(outcomes, delta_failed):
            metrics.add_metric(name=name, unit=unit, value=value)
