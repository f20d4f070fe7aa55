"""Reads CloudWatch metric series and alarm states for the dashboard."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from fleetota_core.adapters.aws_errors import reading

if TYPE_CHECKING:
    from datetime import datetime


@dataclass(frozen=True)
class MetricQuery:
    """One metric series to fetch; ``label`` names it on the chart."""

    label: str
    namespace: str
    metric: str
    stat: str = "Average"
    dimensions: tuple[tuple[str, str], ...] = ()


def metric_series(
    cloudwatch: Any,
    queries: list[MetricQuery],
    start: datetime,
    end: datetime,
    period_s: int,
) -> dict[str, list[tuple[datetime, float]]]:
    """``label -> [(timestamp, value), ...]`` oldest first; one GetMetricData call per 500 series."""
    out: dict[str, list[tuple[datetime, float]]] = {q.label: [] for q in queries}
    if not queries:
        return out
    by_id = {f"m{i}": q for i, q in enumerate(queries)}
    request = [
        {
            "Id": mid,
            "Label": q.label,
            "MetricStat": {
                "Metric": {
                    "Namespace": q.namespace,
                    "MetricName": q.metric,
                    "Dimensions": [{"Name": k, "Value": v} for k, v in q.dimensions],
                },
                "Period": period_s,
                "Stat": q.stat,
            },
            "ReturnData": True,
        }
        for mid, q in by_id.items()
    ]
    with reading("CloudWatch metrics"):
        pages = cloudwatch.get_paginator("get_metric_data").paginate(
            MetricDataQueries=request, StartTime=start, EndTime=end, ScanBy="TimestampAscending"
        )
        for page in pages:
            for result in page.get("MetricDataResults", []):
                label = by_id[result["Id"]].label
                out[label].extend(zip(result.get("Timestamps", []), result.get("Values", []), strict=False))
    return {label: sorted(points) for label, points in out.items()}


def alarm_states(cloudwatch: Any, name_prefix: str) -> list[dict[str, Any]]:
    """Metric alarms whose name starts with ``name_prefix``: name, state, reason, metric, threshold."""
    alarms: list[dict[str, Any]] = []
    with reading("CloudWatch alarms"):
        for page in cloudwatch.get_paginator("describe_alarms").paginate(AlarmNamePrefix=name_prefix):
            for alarm in page.get("MetricAlarms", []):
                alarms.append(
                    {
                        "name": alarm["AlarmName"],
                        "state": alarm.get("StateValue", "INSUFFICIENT_DATA"),
                        "reason": alarm.get("StateReason", ""),
                        "updated": alarm.get("StateUpdatedTimestamp"),
                        "metric": f"{alarm.get('Namespace', '')}/{alarm.get('MetricName', '')}",
                        "threshold": alarm.get("Threshold"),
                        "comparison": alarm.get("ComparisonOperator", ""),
                    }
                )
    return alarms


def dimension_sets(cloudwatch: Any, namespace: str, metric: str) -> list[tuple[tuple[str, str], ...]]:
    """The distinct dimension sets ``metric`` was published with, fewest dimensions first.

    moto's ``list_metrics`` repeats entries, hence the set.
    """
    found: set[tuple[tuple[str, str], ...]] = set()
    with reading("CloudWatch metric list"):
        for page in cloudwatch.get_paginator("list_metrics").paginate(Namespace=namespace, MetricName=metric):
            for m in page.get("Metrics", []):
                found.add(tuple(sorted((d["Name"], d["Value"]) for d in m.get("Dimensions", []))))
    return sorted(found, key=lambda dims: (len(dims), dims))
