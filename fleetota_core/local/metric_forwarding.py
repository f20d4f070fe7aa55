"""Forwards handler EMF metrics and the AWS/Lambda invocation metrics to CloudWatch, in batches."""

from __future__ import annotations

import threading
from collections import defaultdict
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fleetota_core.adapters.clients import ClientFactory
    from fleetota_core.local.functions import Invocation
    from fleetota_core.local.stack_spec import QueueSpec

# PutMetricData takes up to 1000 datums per call; smaller batches keep each request cheap locally.
_BATCH = 150


def lambda_datums(invocation: Invocation) -> list[dict[str, Any]]:
    """The AWS/Lambda Invocations, Errors and Duration datums for one invocation."""
    dimensions = [{"Name": "FunctionName", "Value": invocation.function_name}]
    now = datetime.now(UTC)
    return [
        {
            "Namespace": "AWS/Lambda",
            "MetricName": name,
            "Dimensions": dimensions,
            "Timestamp": now,
            "Value": value,
            "Unit": unit,
        }
        for name, value, unit in (
            ("Invocations", 1.0, "Count"),
            ("Errors", 1.0 if invocation.failed else 0.0, "Count"),
            ("Duration", round(invocation.duration_ms, 3), "Milliseconds"),
        )
    ]


def queue_depth_datums(clients: ClientFactory, queues: list[QueueSpec]) -> list[dict[str, Any]]:
    """AWS/SQS depth metrics per queue, which CloudWatch publishes on AWS and moto never does."""
    now = datetime.now(UTC)
    datums = []
    for queue in queues:
        attributes = clients.sqs.get_queue_attributes(
            QueueUrl=queue.url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        for metric, attribute in (
            ("ApproximateNumberOfMessagesVisible", "ApproximateNumberOfMessages"),
            ("ApproximateNumberOfMessagesNotVisible", "ApproximateNumberOfMessagesNotVisible"),
        ):
            datums.append(
                {
                    "Namespace": "AWS/SQS",
                    "MetricName": metric,
                    "Dimensions": [{"Name": "QueueName", "Value": queue.name}],
                    "Timestamp": now,
                    "Value": float(attributes.get(attribute, 0)),
                    "Unit": "Count",
                }
            )
    return datums


class MetricForwarder:
    """Collects datums from invocations; :meth:`flush` sends them with ``put_metric_data``."""

    def __init__(self, clients: ClientFactory) -> None:
        self.clients = clients
        self._pending: list[dict[str, Any]] = []
        self._lock = threading.Lock()

    def record(self, invocation: Invocation) -> None:
        with self._lock:
            self._pending.extend(invocation.metrics)
            self._pending.extend(lambda_datums(invocation))

    def add(self, datums: list[dict[str, Any]]) -> None:
        with self._lock:
            self._pending.extend(datums)

    def flush(self) -> int:
        """Send what was recorded; returns the number of datums sent."""
        with self._lock:
            pending, self._pending = self._pending, []
        by_namespace: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for datum in pending:
            body = {k: v for k, v in datum.items() if k != "Namespace"}
            by_namespace[datum["Namespace"]].append(body)
        for namespace, datums in by_namespace.items():
            for start in range(0, len(datums), _BATCH):
                self.clients.cloudwatch.put_metric_data(
                    Namespace=namespace, MetricData=datums[start : start + _BATCH]
                )
        return len(pending)
