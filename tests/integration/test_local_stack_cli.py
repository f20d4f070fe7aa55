"""`python -m fleetota_core local ...` against the session's moto server, as a user runs it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from fleetota_core.local.provision import missing_resources

if TYPE_CHECKING:
    from tests.integration.conftest import LocalStack

REPO_ROOT = Path(__file__).resolve().parents[2]


def _cli(stack: LocalStack, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "FLEETOTA_MODE": "local", "FLEETOTA_LOCAL_PORT": str(stack.settings.local_port)}
    return subprocess.run(
        [sys.executable, "-m", "fleetota_core", *args],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def test_help_lists_the_local_command():
    result = subprocess.run(
        [sys.executable, "-m", "fleetota_core", "--help"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    assert "local" in result.stdout


def test_status_json_prints_the_endpoint_and_every_resource_name(stack: LocalStack):
    result = _cli(stack, "local", "status", "--json")
    assert result.returncode == 0, result.stderr
    status = json.loads(result.stdout)
    assert status["endpoint"] == stack.endpoint_url
    assert status["backend"] == "moto" and status["provisioned"] is True and status["missing"] == []
    assert status["resources"] == stack.resources.as_dict()
    names = json.dumps(status)
    for name in stack.resources.as_dict().values():
        assert name in names
    assert set(status["buckets"]) == {stack.resources.telemetry_bucket, stack.resources.firmware_bucket}
    assert set(status["tables"]) >= {stack.resources.vehicles_table, stack.resources.deployments_table}
    assert stack.resources.alerts_topic_arn in status["topics"].values()
    assert status["keys"] == [stack.resources.image_key_alias, stack.resources.director_key_alias]
    assert len(status["alarms"]) == len(stack.spec.alarms) > 0


def test_wait_returns_at_once_when_the_stack_is_ready(stack: LocalStack):
    result = _cli(stack, "local", "wait", "--timeout", "10")
    assert result.returncode == 0, result.stderr


def test_wait_fails_with_one_error_line_when_nothing_listens():
    env = {**os.environ, "FLEETOTA_MODE": "local", "FLEETOTA_LOCAL_PORT": "9"}
    result = subprocess.run(
        [sys.executable, "-m", "fleetota_core", "local", "wait", "--timeout", "0.5"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
    )
    assert result.returncode == 1
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1


def test_reset_empties_the_data_and_keeps_the_resources(stack: LocalStack):
    s3, dynamodb, sqs = stack.clients.s3, stack.clients.dynamodb, stack.clients.sqs
    s3.put_object(Bucket=stack.resources.firmware_bucket, Key="fw/1.0.0.bin", Body=b"firmware")
    dynamodb.put_item(TableName=stack.resources.vehicles_table, Item={"vin": {"S": "1HGCM82633A004352"}})
    sqs.send_message(QueueUrl=stack.resources.telemetry_dlq_url, MessageBody="{}")
    result = _cli(stack, "local", "reset")
    assert result.returncode == 0, result.stderr
    assert s3.list_objects_v2(Bucket=stack.resources.firmware_bucket).get("KeyCount") == 0
    assert dynamodb.scan(TableName=stack.resources.vehicles_table)["Count"] == 0
    assert "Messages" not in sqs.receive_message(QueueUrl=stack.resources.telemetry_dlq_url)
    assert missing_resources(stack.spec, stack.clients) == []


@pytest.mark.slow
def test_up_attaches_to_a_running_endpoint_and_stops_cleanly_on_ctrl_c(stack: LocalStack):
    env = {**os.environ, "FLEETOTA_MODE": "local", "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        [sys.executable, "-m", "fleetota_core", "local", "up", "--port", str(stack.settings.local_port)],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and process.stdout is not None:
            line = process.stdout.readline()
            lines.append(line)
            if "local stack ready" in line or not line:
                break
        assert any("attaching to the moto endpoint" in line for line in lines), lines
        assert any("local stack ready" in line for line in lines), lines
    finally:
        process.send_signal(signal.SIGINT)
        output, _ = process.communicate(timeout=30)
    assert process.returncode == 0, output
    # The endpoint it attached to belongs to someone else and keeps running.
    assert stack.clients.s3.head_bucket(Bucket=stack.resources.telemetry_bucket)


def test_emptying_the_data_without_moto_reset_clears_items_object_versions_and_messages(stack: LocalStack):
    # The path `local reset` takes on endpoints other than moto (e.g. LocalStack).
    from fleetota_core.local.reset import empty_data

    s3, dynamodb, sqs = stack.clients.s3, stack.clients.dynamodb, stack.clients.sqs
    for body in (b"v1", b"v2"):
        s3.put_object(Bucket=stack.resources.firmware_bucket, Key="fw/1.0.0.bin", Body=body)
    dynamodb.put_item(
        TableName=stack.resources.deployments_table, Item={"campaign_id": {"S": "c1"}, "vin": {"S": "V1"}}
    )
    sqs.send_message(QueueUrl=stack.resources.telemetry_queue_url, MessageBody="{}")
    empty_data(stack.spec, stack.clients)
    assert "Versions" not in s3.list_object_versions(Bucket=stack.resources.firmware_bucket)
    assert dynamodb.scan(TableName=stack.resources.deployments_table)["Count"] == 0
    assert "Messages" not in sqs.receive_message(QueueUrl=stack.resources.telemetry_queue_url)
    assert missing_resources(stack.spec, stack.clients) == []
