"""The local Lambda runtime delivers AWS-shaped events and honours Lambda's SQS semantics."""

from __future__ import annotations

import json
import threading
import time
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote_plus

if TYPE_CHECKING:
    from tests.integration.conftest import LocalStack

RAW_KEY = "raw/dt=2026-11-26/hour=09/batch 0001.ndjson.gz"


def _recording_handler(seen: list[dict[str, Any]]) -> Any:
    def handler(event: dict[str, Any], context: Any) -> Any:
        seen.append({"event": event, "function_name": context.function_name})
        return {"batchItemFailures": []}

    return handler


def test_an_object_put_under_raw_reaches_the_telemetry_handler_as_an_sqs_event_with_its_key(
    stack: LocalStack,
):
    # Given a telemetry handler that records its events
    seen: list[dict[str, Any]] = []
    runtime = stack.make_runtime(handlers={"telemetry_processor": _recording_handler(seen)})
    # When a vehicle batch lands under raw/ (and another object outside it)
    stack.clients.s3.put_object(Bucket=stack.resources.telemetry_bucket, Key=RAW_KEY, Body=b"{}")
    stack.clients.s3.put_object(
        Bucket=stack.resources.telemetry_bucket, Key="snapshots/fleet.parquet", Body=b"x"
    )
    result = runtime.drain(timeout=10)
    # Then one SQS-shaped event arrives, with the key percent-encoded as on AWS, and is deleted
    assert result.received == 1 and result.succeeded == 1 and result.failed == 0
    (call,) = seen
    assert call["function_name"] == stack.resources.telemetry_function
    (record,) = call["event"]["Records"]
    queue_arn = stack.spec.queue(stack.resources.telemetry_queue_url).arn
    assert record["eventSource"] == "aws:sqs" and record["eventSourceARN"] == queue_arn
    assert record["awsRegion"] == stack.settings.region
    assert {"messageId", "receiptHandle", "body", "attributes", "messageAttributes", "md5OfBody"} <= set(
        record
    )
    assert record["attributes"]["ApproximateReceiveCount"] == "1"
    (s3_record,) = json.loads(record["body"])["Records"]
    assert s3_record["eventSource"] == "aws:s3" and s3_record["eventName"].startswith("ObjectCreated:")
    assert s3_record["s3"]["bucket"]["name"] == stack.resources.telemetry_bucket
    # As on AWS the key arrives percent-encoded, and unquote_plus (what the handler uses) restores it.
    encoded = s3_record["s3"]["object"]["key"]
    assert "=" not in encoded and " " not in encoded
    assert unquote_plus(encoded) == RAW_KEY
    queue = stack.clients.sqs.get_queue_attributes(
        QueueUrl=stack.resources.telemetry_queue_url, AttributeNames=["ApproximateNumberOfMessages"]
    )
    assert queue["Attributes"]["ApproximateNumberOfMessages"] == "0"


def test_messages_listed_in_batch_item_failures_stay_on_the_queue_and_the_others_are_deleted(
    stack: LocalStack,
):
    url = stack.resources.telemetry_queue_url
    for n in range(3):
        stack.clients.sqs.send_message(QueueUrl=url, MessageBody=json.dumps({"n": n}))

    def fail_odd(event: dict[str, Any], context: Any) -> dict[str, Any]:
        failures = [r["messageId"] for r in event["Records"] if json.loads(r["body"])["n"] % 2]
        return {"batchItemFailures": [{"itemIdentifier": m} for m in failures]}

    runtime = stack.make_runtime(handlers={"telemetry_processor": fail_odd}, visibility_timeout=0)
    first = runtime.poll()
    assert (first.received, first.succeeded, first.failed, first.invocations) == (3, 2, 1, 1)
    again = stack.clients.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
    assert [json.loads(m["Body"])["n"] for m in again] == [1]


def test_a_message_whose_handler_always_fails_reaches_the_dlq_after_max_receive_count(stack: LocalStack):
    # Given the template's redrive policy, and a handler that always raises
    queue = stack.spec.queue(stack.resources.telemetry_queue_url)
    max_receives = queue.max_receive_count
    assert max_receives and max_receives > 1
    calls: list[int] = []

    def always_fails(event: dict[str, Any], context: Any) -> None:
        calls.append(int(event["Records"][0]["attributes"]["ApproximateReceiveCount"]))
        raise RuntimeError("poison message")

    runtime = stack.make_runtime(handlers={"telemetry_processor": always_fails}, visibility_timeout=0)
    stack.clients.sqs.send_message(QueueUrl=queue.url, MessageBody='{"poison": true}')
    # When the runtime keeps retrying it
    deadline = time.monotonic() + 20
    dlq: list[dict[str, Any]] = []
    while not dlq and time.monotonic() < deadline:
        runtime.drain(timeout=5)
        # VisibilityTimeout=0: peek, so the message stays visible for the DLQ depth alarm below.
        dlq = stack.clients.sqs.receive_message(
            QueueUrl=stack.resources.telemetry_dlq_url, VisibilityTimeout=0
        ).get("Messages", [])
    # Then SQS's own redrive moved it to the DLQ after exactly maxReceiveCount attempts
    assert [json.loads(m["Body"]) for m in dlq] == [{"poison": True}]
    assert calls == list(range(1, max_receives + 1))
    # And the DLQ depth alarm sees it (the runtime publishes the AWS/SQS depth metrics moto lacks)
    transitions = {t.alarm_name: t.new_state for t in runtime.evaluate_alarms()}
    dlq_alarms = [
        a["AlarmName"]
        for a in stack.spec.alarms
        if a["Namespace"] == "AWS/SQS"
        and {d["Value"] for d in a.get("Dimensions", [])} == {"fleetota-local-telemetry-dlq"}
    ]
    assert dlq_alarms and all(transitions[name] == "ALARM" for name in dlq_alarms)


def test_the_schedule_fires_the_update_manager_with_a_scheduled_event(stack: LocalStack):
    seen: list[dict[str, Any]] = []
    runtime = stack.make_runtime(handlers={"update_manager": _recording_handler(seen)})
    invocations = runtime.fire_schedule()
    (schedule,) = stack.spec.schedules
    assert [i.function_name for i in invocations] == [stack.resources.update_function]
    assert not invocations[0].failed, invocations[0].error
    event = seen[0]["event"]
    assert event["detail-type"] == "Scheduled Event" and event["source"] == "aws.events"
    assert event["resources"] == [schedule.arn]
    assert seen[0]["function_name"] == stack.resources.update_function


def test_the_poller_gathers_objects_arriving_within_the_batching_window_into_one_invocation(
    stack: LocalStack,
):
    # Given the template's event source, which gathers messages for MaximumBatchingWindowInSeconds
    (source,) = stack.spec.queue_sources
    assert source.batching_window_s == 1.0
    seen: list[dict[str, Any]] = []
    runtime = stack.make_runtime(handlers={"telemetry_processor": _recording_handler(seen)})
    bucket = stack.resources.telemetry_bucket
    stack.clients.s3.put_object(Bucket=bucket, Key="raw/a.ndjson.gz", Body=b"{}")

    # When a second object lands while the window is open (the poller waits it out)
    def later() -> None:
        time.sleep(0.3)
        stack.clients.s3.put_object(Bucket=bucket, Key="raw/b.ndjson.gz", Body=b"{}")

    writer = threading.Thread(target=later)
    writer.start()
    started = time.monotonic()
    result = runtime.poll(wait_seconds=2, gather=True)
    writer.join()

    # Then both reach the handler in one invocation, a window's length after the first arrived
    assert (result.invocations, result.received) == (1, 2)
    assert len(seen[0]["event"]["Records"]) == 2
    assert time.monotonic() - started >= source.batching_window_s
