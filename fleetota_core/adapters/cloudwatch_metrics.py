"""The one custom-metrics writer: CloudWatch Embedded Metric Format (EMF) lines, never PutMetricData.

A Lambda's stdout goes to its log group, and CloudWatch Logs turns each EMF line into metric data:
no request, no throttling, no ``cloudwatch:PutMetricData`` in the role (issue #16). The local runtime
does that extraction itself (``fleetota_core/local/emf.py``), so both modes run this same code.
"""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence
    from datetime import datetime

    # (name, value, unit) or (name, value, unit, dimensions)
    Datum = tuple[str, float, str] | tuple[str, float, str, Mapping[str, str]]

# The EMF specification: at most 100 metric definitions per directive and 100 values per metric.
MAX_METRICS_PER_DOCUMENT = 100
MAX_VALUES_PER_METRIC = 100
OTA_NAMESPACE = "OTAUpdates"


def _stdout_line(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def emf_documents(namespace: str, datums: Sequence[Datum], ts: datetime) -> list[dict[str, Any]]:
    """The EMF documents for ``datums``: one per dimension set (and per 100 metrics).

    Datums with the same name and dimensions become one metric with a list of values, as CloudWatch
    Logs reads them (each value is a sample, so Average and SampleCount come out as with
    PutMetricData).
    """
    groups: dict[tuple[tuple[str, str], ...], dict[str, tuple[str, list[float]]]] = {}
    for name, value, unit, *rest in datums:
        dimensions = tuple(sorted(rest[0].items())) if rest and rest[0] else ()
        metrics = groups.setdefault(dimensions, {})
        metrics.setdefault(name, (unit, []))[1].append(float(value))
    millis = int(ts.timestamp() * 1000)
    documents: list[dict[str, Any]] = []
    for dimensions, metrics in groups.items():
        # A metric with more than 100 samples continues in a further document.
        entries = [
            (name, unit, values[start : start + MAX_VALUES_PER_METRIC])
            for name, (unit, values) in metrics.items()
            for start in range(0, len(values), MAX_VALUES_PER_METRIC)
        ]
        while entries:
            chunk: list[tuple[str, str, list[float]]] = []
            names: set[str] = set()
            for entry in list(entries):
                if len(chunk) == MAX_METRICS_PER_DOCUMENT:
                    break
                if entry[0] in names:
                    continue
                names.add(entry[0])
                chunk.append(entry)
                entries.remove(entry)
            documents.append(_document(namespace, dict(dimensions), chunk, millis))
    return documents


def _document(
    namespace: str, dimensions: dict[str, str], metrics: list[tuple[str, str, list[float]]], millis: int
) -> dict[str, Any]:
    directive = {
        "Namespace": namespace,
        "Dimensions": [sorted(dimensions)],
        "Metrics": [{"Name": name, "Unit": unit} for name, unit, _ in metrics],
    }
    document: dict[str, Any] = {"_aws": {"Timestamp": millis, "CloudWatchMetrics": [directive]}}
    document.update(dimensions)
    document.update({name: values[0] if len(values) == 1 else values for name, _, values in metrics})
    return document


class MetricsWriter:
    """Publishes datums to one namespace as EMF lines through ``emit`` (stdout by default).

    Callers publish once per tick (never per vehicle); a tick costs log bytes, not requests.
    """

    def __init__(self, namespace: str, emit: Callable[[str], None] = _stdout_line) -> None:
        self.namespace = namespace
        self.emit = emit

    def publish(self, datums: Sequence[Datum], ts: datetime) -> None:
        """Emit ``datums``, stamped ``ts``; nothing at all when there are none."""
        for document in emf_documents(self.namespace, datums, ts):
            self.emit(json.dumps(document, separators=(",", ":")))


class OtaMetrics(MetricsWriter):
    """The update manager's writer: the ``OTAUpdates`` namespace the campaign alarms watch."""

    def __init__(self, emit: Callable[[str], None] = _stdout_line) -> None:
        super().__init__(OTA_NAMESPACE, emit)
