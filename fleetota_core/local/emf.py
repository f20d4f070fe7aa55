"""CloudWatch Embedded Metric Format: turn the JSON log lines handlers print into metric data.

On AWS, CloudWatch Logs extracts these metrics; moto does not, so the local runtime does it.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any


def parse_emf_line(line: str) -> list[dict[str, Any]] | None:
    """The ``put_metric_data`` datums in one EMF line, or None if the line is not EMF.

    One datum per metric per dimension set, as CloudWatch does; list values become ``Values``.
    """
    text = line.strip()
    if not text.startswith("{") or '"_aws"' not in text:
        return None
    try:
        document = json.loads(text)
        metadata = document["_aws"]
        directives = metadata["CloudWatchMetrics"]
    except (ValueError, KeyError, TypeError):
        return None
    millis = metadata.get("Timestamp")
    timestamp = datetime.fromtimestamp(int(millis) / 1000, tz=UTC) if millis else datetime.now(UTC)
    datums: list[dict[str, Any]] = []
    for directive in directives:
        namespace = directive.get("Namespace", "aws-embedded-metrics")
        dimension_sets = directive.get("Dimensions") or [[]]
        for metric in directive.get("Metrics", []):
            name = metric["Name"]
            if name not in document:
                continue
            value = document[name]
            for dimension_set in dimension_sets:
                datum: dict[str, Any] = {
                    "Namespace": namespace,
                    "MetricName": name,
                    "Dimensions": [
                        {"Name": d, "Value": str(document[d])} for d in dimension_set if d in document
                    ],
                    "Timestamp": timestamp,
                    "Unit": metric.get("Unit", "None"),
                }
                if isinstance(value, list):
                    datum["Values"] = [float(v) for v in value]
                else:
                    datum["Value"] = float(value)
                if metric.get("StorageResolution") == 1:
                    datum["StorageResolution"] = 1
                datums.append(datum)
    return datums


def split_emf(output: str) -> tuple[list[dict[str, Any]], list[str]]:
    """Split captured handler output into metric datums and the remaining (log) lines."""
    datums: list[dict[str, Any]] = []
    logs: list[str] = []
    for line in output.splitlines():
        parsed = parse_emf_line(line)
        if parsed is None:
            logs.append(line)
        else:
            datums.extend(parsed)
    return datums, logs
