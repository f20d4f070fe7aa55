"""The one custom-metrics writer emits EMF lines that CloudWatch Logs accepts; no PutMetricData.

Each document is checked against the EMF specification's limits (tests/unit/emf_spec.py), which
neither moto nor the local runtime enforces, and read back through the local runtime's extraction.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime

import pytest

from fleetota_core.adapters.cloudwatch_metrics import MetricsWriter, OtaMetrics, emf_documents
from fleetota_core.local.emf import parse_emf_line
from fleetota_core.services.ingest.batch import batch_metrics
from fleetota_core.services.ingest.telemetry_object import IngestOutcome
from tests.unit.emf_spec import violations

TS = datetime(2026, 3, 3, 3, 2, 5, tzinfo=UTC)
NOW_MS = TS.timestamp() * 1000


def emitted(datums, namespace: str = "OTAUpdates") -> list[str]:
    lines: list[str] = []
    MetricsWriter(namespace, lines.append).publish(datums, TS)
    return lines


def extracted(lines: list[str]) -> list[dict]:
    return [datum for line in lines for datum in parse_emf_line(line) or []]


def test_every_line_meets_the_emf_specification_even_for_a_fleet_of_campaigns():
    # 150 campaigns x 6 metrics each, plus samples of one metric: more than any one document may hold.
    datums = [
        (name, i, unit, {"CampaignId": f"c-{i}", **({"Network": "wifi"} if name == "DownloadBytes" else {})})
        for i in range(150)
        for name, unit in (("InProgress", "Count"), ("SuccessRate", "Percent"), ("DownloadBytes", "Bytes"))
    ]
    datums += [(f"Gauge{i}", i, "Count") for i in range(130)]
    datums += [("Latency", i, "Milliseconds") for i in range(250)]
    lines = emitted(datums)
    assert all(violations(line, NOW_MS) == [] for line in lines), [violations(x, NOW_MS) for x in lines][:3]
    assert max(len(json.loads(x)["_aws"]["CloudWatchMetrics"][0]["Metrics"]) for x in lines) == 100


def test_extraction_gives_back_every_datum_with_its_dimensions_unit_and_time():
    datums = [
        ("InProgress", 3, "Count", {"CampaignId": "c-1"}),
        ("InProgress", 7, "Count", {}),
        ("SuccessRate", 99.5, "Percent", {"CampaignId": "c-1"}),
        ("Latency", 10, "Milliseconds"),
        ("Latency", 30, "Milliseconds"),
    ]
    got = extracted(emitted(datums))
    by_key = {(d["MetricName"], tuple((x["Name"], x["Value"]) for x in d["Dimensions"])): d for d in got}
    assert by_key[("InProgress", (("CampaignId", "c-1"),))]["Value"] == 3.0
    assert by_key[("InProgress", ())]["Value"] == 7.0
    assert by_key[("SuccessRate", (("CampaignId", "c-1"),))]["Unit"] == "Percent"
    # Two samples of one metric: one datum with both values, so Average and SampleCount hold.
    assert by_key[("Latency", ())]["Values"] == [10.0, 30.0]
    assert {d["Namespace"] for d in got} == {"OTAUpdates"} and {d["Timestamp"] for d in got} == {TS}


def test_more_than_a_hundred_samples_of_one_metric_spill_into_further_documents():
    lines = emitted([("Latency", i, "Milliseconds") for i in range(250)])
    values = [v for d in extracted(lines) for v in d["Values"]]
    assert sorted(values) == [float(i) for i in range(250)] and len(lines) == 3


def test_nothing_to_publish_emits_nothing():
    assert emitted([]) == []


def test_ota_metrics_write_to_the_namespace_the_campaign_alarms_watch():
    lines: list[str] = []
    OtaMetrics(lines.append).publish([("FailureRate", 1.0, "Percent")], TS)
    [line] = lines
    assert json.loads(line)["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "OTAUpdates"


def test_the_telemetry_processors_powertools_emf_meets_the_specification():
    from aws_lambda_powertools import Metrics

    outcome = IngestOutcome(ref=None, object_lag_ms=12.0, lag_ms=[5.0, 7.0])  # type: ignore[arg-type]
    outcome.counters.update({"stored": 1000, "quarantined": 2})
    metrics = Metrics(namespace="Telemetry", service="")
    for name, unit, value in batch_metrics([outcome] * 3):
        metrics.add_metric(name=name, unit=unit, value=value)
    document = metrics.serialize_metric_set()
    metrics.clear_metrics()
    assert violations(json.dumps(document), time.time() * 1000) == []


@pytest.mark.parametrize(
    ("mutate", "problem"),
    [
        (lambda d: d["_aws"]["CloudWatchMetrics"][0]["Metrics"].extend({"Name": f"M{i}"} for i in range(100)),
         "1 to 100 definitions"),
        (lambda d: d["_aws"]["CloudWatchMetrics"][0]["Dimensions"].append([f"D{i}" for i in range(31)]),
         "at most 30 keys"),
        (lambda d: d["_aws"]["CloudWatchMetrics"][0]["Metrics"][0].update(Unit="Requests"),
         "not a CloudWatch unit"),
        (lambda d: d.update(InProgress="3"), "is not numbers"),
        (lambda d: d.update(InProgress=list(range(101))), "101 values"),
        (lambda d: d.update(CampaignId=""), "no valid string target member"),
        (lambda d: d["_aws"].update(Timestamp=int(NOW_MS) - 15 * 24 * 3600 * 1000), "14 days"),
        (lambda d: d["_aws"]["CloudWatchMetrics"][0].update(Namespace="AWS/Lambda"), "Namespace"),
    ],
    ids=["101 metrics", "31 dimensions", "unit", "string value", "101 values", "empty dimension", "old",
         "AWS namespace"],
)  # fmt: skip
def test_the_specification_check_refuses_what_cloudwatch_logs_would_drop(mutate, problem):
    [document] = emf_documents("OTAUpdates", [("InProgress", 3, "Count", {"CampaignId": "c-1"})], TS)
    assert violations(json.dumps(document), NOW_MS) == []
    mutate(document)
    assert any(problem in p for p in violations(json.dumps(document), NOW_MS))
