"""The one metrics writer: few PutMetricData calls, optional dimensions, failures in the taxonomy."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from botocore.exceptions import ClientError

from fleetota_core.adapters.cloudwatch_metrics import MAX_DATUMS_PER_CALL, MetricsWriter, OtaMetrics
from fleetota_core.errors import TransientAWSError

TS = datetime(2026, 3, 3, 3, 2, 5, tzinfo=UTC)


class RecordingCloudWatch:
    def __init__(self, error: Exception | None = None) -> None:
        self.calls: list[dict[str, Any]] = []
        self.error = error

    def put_metric_data(self, **request: Any) -> None:
        self.calls.append(request)
        if self.error:
            raise self.error


def test_datums_go_out_in_one_call_per_thousand_which_is_the_put_metric_data_limit() -> None:
    cloudwatch = RecordingCloudWatch()
    MetricsWriter(cloudwatch, "Telemetry").publish([("N", i, "Count") for i in range(2500)], TS)
    assert MAX_DATUMS_PER_CALL == 1000
    assert [len(call["MetricData"]) for call in cloudwatch.calls] == [1000, 1000, 500]
    assert {call["Namespace"] for call in cloudwatch.calls} == {"Telemetry"}


def test_dimensions_are_sent_only_when_a_datum_has_them() -> None:
    cloudwatch = RecordingCloudWatch()
    OtaMetrics(cloudwatch).publish(
        [
            ("InProgress", 3, "Count", {"CampaignId": "c-1"}),
            ("InProgress", 3, "Count", {}),
            ("X", 1, "Count"),
        ],
        TS,
    )
    [call] = cloudwatch.calls
    assert call["Namespace"] == "OTAUpdates"
    assert [d.get("Dimensions") for d in call["MetricData"]] == [
        [{"Name": "CampaignId", "Value": "c-1"}],
        None,
        None,
    ]
    assert call["MetricData"][0] == {
        "MetricName": "InProgress",
        "Value": 3.0,
        "Unit": "Count",
        "Timestamp": TS,
        "Dimensions": [{"Name": "CampaignId", "Value": "c-1"}],
    }


def test_nothing_to_publish_makes_no_call() -> None:
    cloudwatch = RecordingCloudWatch()
    MetricsWriter(cloudwatch, "FleetHealth").publish([], TS)
    assert cloudwatch.calls == []


def test_a_throttled_publish_is_a_transient_error_naming_the_namespace() -> None:
    error = ClientError({"Error": {"Code": "Throttling", "Message": "Rate exceeded"}}, "PutMetricData")
    with pytest.raises(TransientAWSError, match="publishing FleetHealth metrics"):
        MetricsWriter(RecordingCloudWatch(error), "FleetHealth").publish([("Vehicles", 1, "Count")], TS)
