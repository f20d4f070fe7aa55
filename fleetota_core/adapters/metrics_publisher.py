"""CloudWatch OTAUpdates metrics, one PutMetricData call per tick (never per vehicle)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fleetota_core.adapters.aws_errors import reading

if TYPE_CHECKING:
    from datetime import datetime

NAMESPACE = "OTAUpdates"


class OtaMetrics:
    def __init__(self, cloudwatch: Any) -> None:
        self.cloudwatch = cloudwatch

    def publish(self, data: list[tuple[str, float, str, dict[str, str]]], ts: datetime) -> None:
        """``data`` holds (metric name, value, unit, dimensions)."""
        metric_data = [
            {
                "MetricName": name,
                "Value": float(value),
                "Unit": unit,
                "Timestamp": ts,
                "Dimensions": [{"Name": k, "Value": v} for k, v in dims.items()],
            }
            for name, value, unit, dims in data
        ]
        with reading(f"CloudWatch namespace {NAMESPACE}"):
            for start in range(0, len(metric_data), 500):
                self.cloudwatch.put_metric_data(
                    Namespace=NAMESPACE, MetricData=metric_data[start : start + 500]
                )
