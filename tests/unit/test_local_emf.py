"""EMF lines a handler prints become put_metric_data datums; other lines stay log lines."""

from __future__ import annotations

import json

from fleetota_core.local.emf import parse_emf_line, split_emf


def _emf(**extra: object) -> str:
    document = {
        "_aws": {
            "Timestamp": 1_795_725_600_000,
            "CloudWatchMetrics": [
                {
                    "Namespace": "Telemetry",
                    "Dimensions": [["service"], ["service", "model"]],
                    "Metrics": [
                        {"Name": "DataPoints", "Unit": "Count"},
                        {"Name": "Latency", "Unit": "Milliseconds"},
                    ],
                }
            ],
        },
        "service": "telemetry-processor",
        "model": "Aurora",
        "DataPoints": 42,
        "Latency": [10, 20.5],
        **extra,
    }
    return json.dumps(document)


def test_each_metric_becomes_one_datum_per_dimension_set():
    datums = parse_emf_line(_emf())
    assert datums is not None and len(datums) == 4
    first = datums[0]
    assert first["Namespace"] == "Telemetry" and first["MetricName"] == "DataPoints"
    assert first["Value"] == 42.0 and first["Unit"] == "Count"
    assert first["Dimensions"] == [{"Name": "service", "Value": "telemetry-processor"}]
    assert datums[1]["Dimensions"][1] == {"Name": "model", "Value": "Aurora"}
    assert int(first["Timestamp"].timestamp() * 1000) == 1_795_725_600_000


def test_list_values_become_values():
    latency = [d for d in parse_emf_line(_emf()) or [] if d["MetricName"] == "Latency"]
    assert latency[0]["Values"] == [10.0, 20.5] and "Value" not in latency[0]


def test_log_lines_and_plain_json_are_not_emf():
    assert parse_emf_line("processing batch") is None
    assert parse_emf_line('{"level": "INFO", "message": "hi"}') is None
    assert parse_emf_line('{"_aws": "broken"') is None


def test_split_keeps_log_lines_in_order():
    datums, logs = split_emf(f"first\n{_emf()}\nsecond\n")
    assert len(datums) == 4 and logs == ["first", "second"]
