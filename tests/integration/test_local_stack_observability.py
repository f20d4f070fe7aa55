"""Metrics and alarms locally: EMF forwarding, AWS/Lambda metrics, alarm evaluation and SNS alerts."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tests.integration.conftest import LocalStack


def _alarm(stack: LocalStack, suffix: str) -> dict[str, Any]:
    (alarm,) = [a for a in stack.spec.alarms if a["AlarmName"] == f"{stack.spec.stack}-{suffix}"]
    return alarm


def breach_alarm(stack: LocalStack, alarm: dict[str, Any]) -> None:
    """Put datapoints at twice the threshold in every period the alarm evaluates."""
    now = datetime.now(UTC)
    stack.clients.cloudwatch.put_metric_data(
        Namespace=alarm["Namespace"],
        MetricData=[
            {
                "MetricName": alarm["MetricName"],
                "Value": alarm["Threshold"] * 2,
                "Unit": "Milliseconds",
                "Timestamp": now - timedelta(seconds=alarm["Period"] * n + 10),
            }
            for n in range(alarm["EvaluationPeriods"])
        ],
    )


def _subscribe_queue_to_alerts(stack: LocalStack) -> str:
    url = stack.clients.sqs.create_queue(QueueName="alerts-inbox")["QueueUrl"]
    arn = stack.clients.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    stack.clients.sns.subscribe(TopicArn=stack.resources.alerts_topic_arn, Protocol="sqs", Endpoint=arn)
    return url


def _alerts(stack: LocalStack, url: str) -> list[dict[str, Any]]:
    messages = stack.clients.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1)
    return [json.loads(json.loads(m["Body"])["Message"]) for m in messages.get("Messages", [])]


def _sum(
    stack: LocalStack, namespace: str, name: str, dimensions: list[dict[str, str]], stat: str = "Sum"
) -> float:
    now = datetime.now(UTC)
    result = stack.clients.cloudwatch.get_metric_data(
        MetricDataQueries=[
            {
                "Id": "m",
                "MetricStat": {
                    "Metric": {"Namespace": namespace, "MetricName": name, "Dimensions": dimensions},
                    "Period": 60,
                    "Stat": stat,
                },
            }
        ],
        StartTime=now - timedelta(minutes=5),
        EndTime=now + timedelta(minutes=1),
    )
    return sum(result["MetricDataResults"][0]["Values"])


def test_a_breaching_metric_puts_its_alarm_in_alarm_and_alerts_the_topic(stack: LocalStack):
    # Given the template's latency alarm and an operator subscribed to the alerts topic
    alarm = _alarm(stack, "telemetry-latency")
    inbox = _subscribe_queue_to_alerts(stack)
    # When processing latency breaches the threshold in every evaluated period
    breach_alarm(stack, alarm)
    transitions = stack.runtime.evaluate_alarms()
    # Then the alarm is in ALARM and one alert about it reached the topic
    changed = {t.alarm_name: t.new_state for t in transitions}
    assert changed[alarm["AlarmName"]] == "ALARM"
    described = stack.clients.cloudwatch.describe_alarms(AlarmNames=[alarm["AlarmName"]])["MetricAlarms"][0]
    assert described["StateValue"] == "ALARM"
    alerts = [a for a in _alerts(stack, inbox) if a["AlarmName"] == alarm["AlarmName"]]
    assert [(a["OldStateValue"], a["NewStateValue"]) for a in alerts] == [("INSUFFICIENT_DATA", "ALARM")]
    assert alerts[0]["NewStateReason"] and alerts[0]["StateChangeTime"]
    # And evaluating again without a change notifies nobody
    assert alarm["AlarmName"] not in {t.alarm_name for t in stack.runtime.evaluate_alarms()}


def test_alarms_without_data_that_treat_it_as_not_breaching_go_to_ok(stack: LocalStack):
    transitions = {t.alarm_name: t.new_state for t in stack.runtime.evaluate_alarms()}
    for alarm in stack.spec.alarms:
        expected = {"notBreaching": "OK", "breaching": "ALARM"}.get(alarm.get("TreatMissingData", "missing"))
        assert transitions.get(alarm["AlarmName"]) == expected


def test_a_failing_invocation_publishes_aws_lambda_errors_and_trips_the_errors_alarm(stack: LocalStack):
    def always_fails(event: dict[str, Any], context: Any) -> None:
        raise RuntimeError("boom")

    runtime = stack.make_runtime(handlers={"telemetry_processor": always_fails})
    stack.clients.sqs.send_message(QueueUrl=stack.resources.telemetry_queue_url, MessageBody="{}")
    result = runtime.drain(timeout=5)
    assert (result.invocations, result.errors, result.failed) == (1, 1, 1)
    function = [{"Name": "FunctionName", "Value": stack.resources.telemetry_function}]
    assert _sum(stack, "AWS/Lambda", "Invocations", function) == 1
    assert _sum(stack, "AWS/Lambda", "Errors", function) == 1
    assert _sum(stack, "AWS/Lambda", "Duration", function, stat="Maximum") > 0
    transitions = {t.alarm_name: t.new_state for t in runtime.evaluate_alarms()}
    assert transitions[_alarm(stack, "telemetry-processor-errors")["AlarmName"]] == "ALARM"
    assert transitions[_alarm(stack, "update-manager-errors")["AlarmName"]] == "OK"


def test_metrics_a_handler_emits_as_emf_reach_cloudwatch(stack: LocalStack):
    from aws_lambda_powertools import Metrics
    from aws_lambda_powertools.metrics import MetricUnit

    metrics = Metrics(namespace="Telemetry", service="emf-test")

    @metrics.log_metrics
    def emits(event: dict[str, Any], context: Any) -> dict[str, Any]:
        metrics.add_metric(name="DataPoints", unit=MetricUnit.Count, value=42)
        metrics.add_metric(name="ProcessingLatency", unit=MetricUnit.Milliseconds, value=12.5)
        print("an ordinary log line")
        return {"batchItemFailures": []}

    runtime = stack.make_runtime(handlers={"telemetry_processor": emits})
    stack.clients.sqs.send_message(QueueUrl=stack.resources.telemetry_queue_url, MessageBody="{}")
    assert runtime.drain(timeout=5).succeeded == 1
    service = [{"Name": "service", "Value": "emf-test"}]
    assert _sum(stack, "Telemetry", "DataPoints", service) == 42
    assert _sum(stack, "Telemetry", "ProcessingLatency", service, stat="Average") == 12.5
    listed = stack.clients.cloudwatch.list_metrics(Namespace="Telemetry", MetricName="DataPoints")["Metrics"]
    assert {d["Name"] for m in listed for d in m["Dimensions"]} == {"service"}
