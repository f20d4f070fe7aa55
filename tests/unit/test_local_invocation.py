"""In-process invocations: env and context as on Lambda, EMF captured, errors and batch failures."""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path
from typing import Any

from fleetota_core.local.event_source import failed_message_ids
from fleetota_core.local.functions import Invocation, LocalFunction
from fleetota_core.local.metric_forwarding import lambda_datums
from fleetota_core.local.stack_spec import FunctionSpec

SPEC = FunctionSpec(
    logical_id="TelemetryProcessorFunction",
    name="demo-telemetry-processor",
    arn="arn:aws:lambda:us-east-1:123456789012:function:demo-telemetry-processor",
    source=Path("lambdas/telemetry_processor/handler.py"),
    timeout_seconds=60,
    memory_mb=1024,
    environment={},
)
EMF = {
    "_aws": {
        "Timestamp": 0,
        "CloudWatchMetrics": [{"Namespace": "T", "Dimensions": [[]], "Metrics": [{"Name": "N"}]}],
    },
    "N": 3,
}


def test_the_handler_sees_its_env_and_a_lambda_context_and_the_env_is_restored():
    seen: dict[str, Any] = {}

    def handler(event: dict[str, Any], context: Any) -> str:
        seen.update(
            env=os.environ.get("FLEETOTA_PROBE"),
            name=context.function_name,
            arn=context.invoked_function_arn,
            memory=context.memory_limit_in_mb,
            remaining=context.get_remaining_time_in_millis(),
            request=context.aws_request_id,
        )
        return "done"

    result = LocalFunction(SPEC, {"FLEETOTA_PROBE": "on"}, handler).invoke({})
    assert result.response == "done" and not result.failed
    assert seen["env"] == "on" and "FLEETOTA_PROBE" not in os.environ
    assert (seen["name"], seen["arn"], seen["memory"]) == (SPEC.name, SPEC.arn, 1024)
    assert 59_000 < seen["remaining"] <= 60_000 and seen["request"] == result.request_id


def test_emf_lines_become_metrics_and_other_output_is_passed_through(capsys):
    def handler(event: dict[str, Any], context: Any) -> None:
        print(json.dumps(EMF))
        print("a log line")

    result = LocalFunction(SPEC, {}, handler).invoke({})
    assert [(m["Namespace"], m["MetricName"], m["Value"]) for m in result.metrics] == [("T", "N", 3.0)]
    out = capsys.readouterr().out
    assert "a log line" in out and "_aws" not in out


def test_an_exception_is_recorded_as_a_failed_invocation_with_error_metrics():
    def handler(event: dict[str, Any], context: Any) -> None:
        raise ValueError("bad batch")

    result = LocalFunction(SPEC, {}, handler).invoke({})
    assert result.failed and isinstance(result.error, ValueError)
    by_name = {d["MetricName"]: d for d in lambda_datums(result)}
    assert by_name["Errors"]["Value"] == 1.0 and by_name["Invocations"]["Value"] == 1.0
    assert by_name["Duration"]["Unit"] == "Milliseconds"
    assert by_name["Errors"]["Dimensions"] == [{"Name": "FunctionName", "Value": SPEC.name}]


MESSAGES = [{"MessageId": m} for m in ("a", "b", "c")]


def _result(response: Any = None, error: BaseException | None = None) -> Invocation:
    return Invocation(function_name="f", request_id="r", duration_ms=1.0, response=response, error=error)


def test_batch_item_failures_keep_only_the_listed_messages():
    response = {"batchItemFailures": [{"itemIdentifier": "b"}]}
    assert failed_message_ids(_result(response), MESSAGES, partial=True) == {"b"}


def test_an_empty_or_missing_failure_list_deletes_the_whole_batch():
    assert failed_message_ids(_result({"batchItemFailures": []}), MESSAGES, partial=True) == set()
    assert failed_message_ids(_result(None), MESSAGES, partial=True) == set()


def test_an_unknown_identifier_or_an_error_retries_the_whole_batch():
    unknown = {"batchItemFailures": [{"itemIdentifier": "zzz"}]}
    assert failed_message_ids(_result(unknown), MESSAGES, partial=True) == {"a", "b", "c"}
    assert failed_message_ids(_result(error=RuntimeError()), MESSAGES, partial=True) == {"a", "b", "c"}


def test_without_report_batch_item_failures_the_response_is_ignored():
    response = {"batchItemFailures": [{"itemIdentifier": "b"}]}
    assert failed_message_ids(_result(response), MESSAGES, partial=False) == set()


def _other(name: str) -> FunctionSpec:
    return FunctionSpec(
        logical_id="UpdateManagerFunction",
        name=name,
        arn=f"arn:aws:lambda:us-east-1:123456789012:function:{name}",
        source=Path("lambdas/update_manager/handler.py"),
        timeout_seconds=50,
        memory_mb=1024,
        environment={},
    )


def test_two_functions_run_side_by_side_each_with_only_its_own_environment():
    """As on Lambda: a long update-manager tick does not hold the telemetry processor back."""
    tick_started, processor_done = threading.Event(), threading.Event()
    seen: dict[str, Any] = {}

    def slow_tick(event: dict[str, Any], context: Any) -> None:
        tick_started.set()
        seen["processor finished during the tick"] = processor_done.wait(10)
        seen["tick"] = os.environ.get("POWERTOOLS_SERVICE_NAME")

    def processor(event: dict[str, Any], context: Any) -> None:
        seen["processor"] = os.getenv("POWERTOOLS_SERVICE_NAME")
        seen["processor keys"] = {k for k in os.environ if k.startswith("FLEETOTA_PROBE")}

    tick = LocalFunction(
        _other("demo-update-manager"), {"POWERTOOLS_SERVICE_NAME": "update-manager"}, slow_tick
    )
    ingest = LocalFunction(
        SPEC, {"POWERTOOLS_SERVICE_NAME": "telemetry-processor", "FLEETOTA_PROBE_P": "1"}, processor
    )
    thread = threading.Thread(target=tick.invoke, args=({},))
    thread.start()
    assert tick_started.wait(10)
    result = ingest.invoke({})
    processor_done.set()
    thread.join(10)
    assert not result.failed
    assert seen == {
        "processor finished during the tick": True,
        "tick": "update-manager",
        "processor": "telemetry-processor",
        "processor keys": {"FLEETOTA_PROBE_P"},
    }
    assert "POWERTOOLS_SERVICE_NAME" not in os.environ or os.environ["POWERTOOLS_SERVICE_NAME"] not in (
        "update-manager",
        "telemetry-processor",
    )


def test_one_function_runs_one_invocation_at_a_time():
    inside, overlapped = threading.Semaphore(1), []

    def handler(event: dict[str, Any], context: Any) -> None:
        if not inside.acquire(blocking=False):
            overlapped.append(event["n"])
            return
        time.sleep(0.05)
        inside.release()

    function = LocalFunction(SPEC, {}, handler)
    threads = [threading.Thread(target=function.invoke, args=({"n": n},)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert overlapped == []


def test_a_variable_set_inside_an_invocation_stays_in_that_function():
    def handler(event: dict[str, Any], context: Any) -> None:
        os.environ["FLEETOTA_SET_INSIDE"] = "x"
        assert os.environ["FLEETOTA_SET_INSIDE"] == "x"

    assert not LocalFunction(SPEC, {}, handler).invoke({}).failed
    assert "FLEETOTA_SET_INSIDE" not in os.environ
