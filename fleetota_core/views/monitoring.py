"""Read models for the monitoring and overview pages: metric trends, alarms, DLQ and quarantine."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import pandas as pd

from fleetota_core.adapters.cloudwatch_reader import MetricQuery, alarm_states, dimension_sets, metric_series
from fleetota_core.adapters.object_reader import child_prefixes, count_objects, newest_objects, read_text
from fleetota_core.adapters.queue_reader import peek_messages, queue_depth

if TYPE_CHECKING:
    from fleetota_core.adapters.clients import ClientFactory
    from fleetota_core.adapters.resources import Resources


@dataclass(frozen=True)
class Chart:
    """A metric to plot: what to fetch and how to title it."""

    title: str
    namespace: str
    metric: str
    stat: str = "Average"
    unit: str = ""


# The names from DESIGN.md, plus what operators need beside them.
FLEET_TRENDS = (
    Chart("Vehicles online", "FleetHealth", "VehiclesOnline", "Average", "vehicles"),
    Chart("Average battery", "FleetHealth", "BatteryAverage", "Average", "%"),
    Chart("Telemetry data points", "Telemetry", "DataPoints", "Sum", "records"),
    Chart("OTA success rate", "OTAUpdates", "SuccessRate", "Average", "%"),
    Chart("OTA updates in progress", "OTAUpdates", "InProgress", "Average", "deployments"),
    Chart("Connectivity", "FleetHealth", "ConnectivityPercent", "Average", "%"),
)
PIPELINE_CHARTS = (
    Chart("Processing latency", "Telemetry", "ProcessingLatency", "Maximum", "ms"),
    Chart("Invalid records", "Telemetry", "InvalidRecords", "Sum", "records"),
    Chart("Quarantined records", "Telemetry", "QuarantinedRecords", "Sum", "records"),
    Chart("DLQ depth", "AWS/SQS", "ApproximateNumberOfMessagesVisible", "Maximum", "messages"),
    Chart("OTA failure rate", "OTAUpdates", "FailureRate", "Average", "%"),
    Chart("Lambda errors", "AWS/Lambda", "Errors", "Sum", "errors"),
    Chart("Lambda duration", "AWS/Lambda", "Duration", "Average", "ms"),
    Chart("Lambda invocations", "AWS/Lambda", "Invocations", "Sum", "invocations"),
)
QUARANTINE_PREFIX = "quarantine/"


def period_for(hours: float) -> int:
    """A CloudWatch period giving ~60-360 points over the range (multiple of 60 s)."""
    return max(60, int(hours * 3600 / 360) // 60 * 60)


def metric_trends(clients: ClientFactory, charts: tuple[Chart, ...], hours: float) -> pd.DataFrame:
    """Long frame ``chart, series, ts, value`` for each chart over the last ``hours``.

    Each dimension set a metric was published with becomes one series, so per-function Lambda metrics
    and per-region fleet metrics show side by side without knowing their dimensions up front.
    """
    queries: list[MetricQuery] = []
    owner: dict[str, tuple[str, str]] = {}
    for chart in charts:
        for dims in dimension_sets(clients.cloudwatch, chart.namespace, chart.metric)[:6]:
            series = ", ".join(v for _, v in dims) or "all"
            label = f"{chart.title}|{series}"
            queries.append(MetricQuery(label, chart.namespace, chart.metric, chart.stat, dims))
            owner[label] = (chart.title, series)
    end = datetime.now(UTC)
    data = metric_series(clients.cloudwatch, queries, end - timedelta(hours=hours), end, period_for(hours))
    rows = [
        {"chart": owner[label][0], "series": owner[label][1], "ts": ts, "value": value}
        for label, points in data.items()
        for ts, value in points
    ]
    return pd.DataFrame(rows, columns=["chart", "series", "ts", "value"])


def alarms_frame(clients: ClientFactory, stack_name: str) -> pd.DataFrame:
    """The stack's alarms: ``name, state, reason, updated, metric, threshold``, worst first."""
    rows = alarm_states(clients.cloudwatch, f"{stack_name}-")
    df = pd.DataFrame(
        rows, columns=["name", "state", "reason", "updated", "metric", "threshold", "comparison"]
    )
    order = {"ALARM": 0, "INSUFFICIENT_DATA": 1, "OK": 2}
    return df.sort_values(by="state", key=lambda s: s.map(order).fillna(3), ignore_index=True)


@dataclass(frozen=True)
class PipelineHealth:
    queue_visible: int
    queue_in_flight: int
    dlq_visible: int
    quarantined_objects: int


def pipeline_health(clients: ClientFactory, resources: Resources) -> PipelineHealth:
    queue = queue_depth(clients.sqs, resources.telemetry_queue_url)
    dlq = queue_depth(clients.sqs, resources.telemetry_dlq_url)
    quarantined = count_objects(clients.s3, resources.telemetry_bucket, QUARANTINE_PREFIX, max_listed=10_000)
    return PipelineHealth(
        queue["visible"], queue["in_flight"], dlq["visible"] + dlq["in_flight"], quarantined
    )


def dlq_samples(clients: ClientFactory, resources: Resources, limit: int = 5) -> list[str]:
    """Bodies of a few dead-lettered messages, pretty-printed when they are JSON."""
    return [_pretty(body) for body in peek_messages(clients.sqs, resources.telemetry_dlq_url, limit)]


def quarantine_samples(clients: ClientFactory, resources: Resources, limit: int = 5) -> list[dict]:
    """The newest quarantined objects (today's and yesterday's) with the first rejected lines of each.

    Quarantine keys are ``quarantine/<kind>/dt=YYYY-MM-DD/...``: listing by day keeps this to recent
    objects however much history the bucket holds.
    """
    bucket = resources.telemetry_bucket
    now = datetime.now(UTC)
    recent: list[dict] = []
    for kind in child_prefixes(clients.s3, bucket, QUARANTINE_PREFIX):
        for day in (now, now - timedelta(days=1)):
            recent += newest_objects(clients.s3, bucket, f"{kind}dt={day:%Y-%m-%d}/", limit=limit)
    samples = []
    for obj in sorted(recent, key=lambda o: o["modified"], reverse=True)[:limit]:
        text = read_text(clients.s3, resources.telemetry_bucket, obj["key"], max_bytes=20_000)
        samples.append({**obj, "sample": "\n".join(_pretty(line) for line in text.splitlines()[:3])})
    return samples


def _pretty(text: str) -> str:
    try:
        return json.dumps(json.loads(text), indent=2, default=str)
    except ValueError:
        return text
