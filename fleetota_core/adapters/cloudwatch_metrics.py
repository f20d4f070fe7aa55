"""Publish a handful of fleet-level datums with one PutMetricData call (per tick, never per vehicle)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from fleetota_core.adapters.aws_errors import translate

if TYPE_CHECKING:
    from datetime import datetime


def put_metrics(cloudwatch: Any, namespace: str, datums: list[tuple[str, float, str]], ts: datetime) -> None:
    """``datums`` holds (name, value, unit); all dimensionless, as the alarms watch them."""
    if not datums:
        return
    data = [{"MetricName": n, "Value": float(v), "Unit": u, "Timestamp": ts} for n, v, u in datums]
    try:
        cloudwatch.put_metric_data(Namespace=namespace, MetricData=data)
    except (ClientError, BotoCoreError) as exc:
        raise translate(exc, f"publishing {namespace} metrics") from exc
