"""Telemetry processor: an SQS batch of S3 "object created" notifications (or a direct S3 event).

Each SQS message is one item: a transient AWS failure fails only that item (partial batch response),
so SQS retries it and finally moves it to the DLQ. Metrics are published once per batch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response

from fleetota_core.adapters.clients import client_factory
from fleetota_core.adapters.resources import resolve_resources
from fleetota_core.services.ingest_batch import TelemetryPipeline, batch_metrics
from fleetota_core.services.telemetry_events import is_direct_s3_event, refs_from_s3_event, refs_from_sqs_body
from fleetota_core.settings import Settings

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

logger = Logger()
# service="": alarms watch dimensionless series, so no "service" dimension from POWERTOOLS_SERVICE_NAME.
metrics = Metrics(namespace="Telemetry", service="")
processor = BatchProcessor(event_type=EventType.SQS)
_pipelines: dict[tuple[str, ...], TelemetryPipeline] = {}


def notified_objects(body: str) -> list[tuple[str, str]]:
    """(bucket, decoded key) of each object an SQS message body names."""
    return [(ref.bucket, ref.key) for ref in refs_from_sqs_body(body)]


def pipeline() -> TelemetryPipeline:
    settings = Settings()
    clients = client_factory(settings)
    resources = resolve_resources(settings, clients)
    key = (str(settings.endpoint_url), *resources.as_dict().values())
    if key not in _pipelines:
        _pipelines[key] = TelemetryPipeline.for_stack(clients, resources)
    return _pipelines[key]


@metrics.log_metrics
@logger.inject_lambda_context
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    telemetry = pipeline()
    telemetry.begin_batch()
    try:
        if is_direct_s3_event(event):
            telemetry.ingest(refs_from_s3_event(event))
            return {"objects": len(telemetry.outcomes)}

        def record_handler(record: SQSRecord) -> None:
            telemetry.handle_sqs_body(record.body)

        return process_partial_response(event, record_handler, processor, context)
    finally:
        for name, unit, value in batch_metrics(telemetry.take_outcomes()):
            metrics.add_metric(name=name, unit=unit, value=value)
