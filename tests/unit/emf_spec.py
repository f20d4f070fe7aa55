"""The CloudWatch Embedded Metric Format specification's rules, checked the way CloudWatch Logs does.

moto never sees EMF and the local runtime's extraction is lenient, so a document CloudWatch Logs
would drop (and so a metric an alarm never gets) is caught here instead. From the specification
("Specification: Embedded metric format", Amazon CloudWatch User Guide) and the PutMetricData limits
it maps to.
"""

from __future__ import annotations

import json
import math
import time
from typing import Any

MAX_METRIC_DEFINITIONS = 100  # per MetricDirective
MAX_DIMENSION_KEYS = 30  # per DimensionSet
MAX_VALUES = 100  # per metric target member array
MAX_EVENT_BYTES = 256 * 1024  # a log event
MAX_NAME = 255  # metric names, namespaces, dimension names
MAX_DIMENSION_VALUE = 1024
MAX_PAST_MS = 14 * 24 * 3600 * 1000
MAX_FUTURE_MS = 2 * 3600 * 1000
UNITS = frozenset(
    [
        "Seconds",
        "Microseconds",
        "Milliseconds",
        "Bytes",
        "Kilobytes",
        "Megabytes",
        "Gigabytes",
        "Terabytes",
        "Bits",
        "Kilobits",
        "Megabits",
        "Gigabits",
        "Terabits",
        "Percent",
        "Count",
        "Bytes/Second",
        "Kilobytes/Second",
        "Megabytes/Second",
        "Gigabytes/Second",
        "Terabytes/Second",
        "Bits/Second",
        "Kilobits/Second",
        "Megabits/Second",
        "Gigabits/Second",
        "Terabits/Second",
        "Count/Second",
        "None",
    ]
)


def _name_ok(value: Any, limit: int = MAX_NAME) -> bool:
    return isinstance(value, str) and 1 <= len(value) <= limit and value.isprintable()


def violations(line: str, now_ms: float | None = None) -> list[str]:
    """Every rule ``line`` breaks; empty when CloudWatch Logs would extract all of its metrics."""
    problems: list[str] = []
    if len(line.encode()) > MAX_EVENT_BYTES:
        problems.append(f"event of {len(line.encode())} bytes > {MAX_EVENT_BYTES}")
    try:
        root = json.loads(line)
    except ValueError as exc:
        return [*problems, f"not JSON: {exc}"]
    metadata = root.get("_aws") if isinstance(root, dict) else None
    if not isinstance(metadata, dict):
        return [*problems, "no _aws metadata object"]
    stamp = metadata.get("Timestamp")
    now_ms = time.time() * 1000 if now_ms is None else now_ms
    if not isinstance(stamp, int) or isinstance(stamp, bool):
        problems.append(f"Timestamp {stamp!r} is not an integer of milliseconds")
    elif not now_ms - MAX_PAST_MS <= stamp <= now_ms + MAX_FUTURE_MS:
        problems.append(f"Timestamp {stamp} is more than 14 days past or 2 hours ahead")
    directives = metadata.get("CloudWatchMetrics")
    if not isinstance(directives, list) or not directives:
        return [*problems, "CloudWatchMetrics is not a non-empty array"]
    for directive in directives:
        problems += _directive_violations(root, directive)
    return problems


def _directive_violations(root: dict[str, Any], directive: Any) -> list[str]:
    if not isinstance(directive, dict):
        return [f"directive {directive!r} is not an object"]
    problems: list[str] = []
    if not _name_ok(directive.get("Namespace")) or str(directive.get("Namespace")).startswith("AWS/"):
        problems.append(f"Namespace {directive.get('Namespace')!r} is invalid")
    for dimension_set in directive.get("Dimensions", []):
        if not isinstance(dimension_set, list) or len(dimension_set) > MAX_DIMENSION_KEYS:
            problems.append(f"dimension set {dimension_set!r} is not an array of at most 30 keys")
            continue
        for key in dimension_set:
            value = root.get(key)
            if not _name_ok(key) or not _name_ok(value, MAX_DIMENSION_VALUE):
                problems.append(f"dimension {key!r}={value!r} has no valid string target member")
    metrics = directive.get("Metrics")
    if not isinstance(metrics, list) or not metrics or len(metrics) > MAX_METRIC_DEFINITIONS:
        problems.append(f"Metrics must hold 1 to 100 definitions, not {metrics!r:.80}")
        metrics = metrics if isinstance(metrics, list) else []
    names = [m.get("Name") if isinstance(m, dict) else None for m in metrics]
    if len(set(names)) != len(names):
        problems.append("a metric is defined twice in one directive")
    for metric, name in zip(metrics, names, strict=True):
        if not _name_ok(name):
            problems.append(f"metric name {name!r} is invalid")
            continue
        if metric.get("Unit", "None") not in UNITS:
            problems.append(f"{name}: unit {metric.get('Unit')!r} is not a CloudWatch unit")
        if metric.get("StorageResolution", 60) not in (1, 60):
            problems.append(f"{name}: StorageResolution must be 1 or 60")
        value = root.get(name)
        values = value if isinstance(value, list) else [value]
        if not values or len(values) > MAX_VALUES:
            problems.append(f"{name}: {len(values)} values, 1 to 100 allowed")
        if not all(_number_ok(v) for v in values):
            problems.append(f"{name}: target member {value!r:.80} is not numbers")
    return problems


def _number_ok(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
