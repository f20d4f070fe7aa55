"""The one CloudWatch metrics writer: a tick's datums go out in as few PutMetricData calls as allowed."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fleetota_core.adapters.aws_errors import AWS_CLIENT_ERRORS, translate

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from datetime import datetime

    # (name, value, unit) or (name, value, unit, dimensions)
    Datum = tuple[str, float, str] | tuple[str, float, str, Mapping[str, str]]

# PutMetricData accepts at most 1000 metrics per request.
MAX_DATUMS_PER_CALL = 1000
OTA_NAMESPACE = "OTAUpdates"


class MetricsWriter:
    """Publishes datums to one namespace through an injected CloudWatch client.

    Callers publish once per tick (never per vehicle), so a tick costs one call per 1000 datums.
    """

    def __init__(self, cloudwatch: Any, namespace: str) -> None:
        self.cloudwatch = cloudwatch
        self.namespace = namespace

    def publish(self, datums: Sequence[Datum], ts: datetime) -> None:
        """Send ``datums``, stamped ``ts``; nothing at all when there are none."""
        data = [_metric(datum, ts) for datum in datums]
        try:
            for start in range(0, len(data), MAX_DATUMS_PER_CALL):
                self.cloudwatch.put_metric_data(
                    Namespace=self.namespace, MetricData=data[start : start + MAX_DATUMS_PER_CALL]
                )
        except AWS_CLIENT_ERRORS as exc:
            raise translate(exc, f"publishing {self.namespace} metrics") from exc


class OtaMetrics(MetricsWriter):
    """The update manager's writer: the ``OTAUpdates`` namespace the campaign alarms watch."""

    def __init__(self, cloudwatch: Any) -> None:
        super().__init__(cloudwatch, OTA_NAMESPACE)


def _metric(datum: Datum, ts: datetime) -> dict[str, Any]:
    name, value, unit, *rest = datum
    metric: dict[str, Any] = {"MetricName": name, "Value": float(value), "Unit": unit, "Timestamp": ts}
    dimensions = rest[0] if rest else None
    if dimensions:
        metric["Dimensions"] = [{"Name": k, "Value": v} for k, v in dimensions.items()]
    return metric
