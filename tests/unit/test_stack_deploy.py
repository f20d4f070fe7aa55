"""Change sets and stack failures on an in-memory CloudFormation: what the operator is told, and when."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from fleetota_core.adapters.cloudformation import SUCCEEDED, CloudFormationStacks
from fleetota_core.errors import DeployError
from fleetota_core.services.deploy.stack_deploy import (
    _change_set_type,
    artifacts_bucket_name,
    format_changes,
    stack_parameters,
    validate_stack_name,
)
from fleetota_core.settings import Settings

STACK_ID = "arn:aws:cloudformation:eu-west-1:111122223333:stack/fleet/abc"


def _event(logical_id: str, resource_type: str, status: str, reason: str = "") -> dict[str, Any]:
    _event.counter += 1  # type: ignore[attr-defined]
    return {
        "EventId": f"e{_event.counter}",  # type: ignore[attr-defined]
        "LogicalResourceId": logical_id,
        "ResourceType": resource_type,
        "ResourceStatus": status,
        "ResourceStatusReason": reason,
    }


_event.counter = 0  # type: ignore[attr-defined]


class FakePaginator:
    def __init__(self, pages: list[dict[str, Any]]) -> None:
        self.pages = pages

    def paginate(self, **_: Any) -> list[dict[str, Any]]:
        return self.pages


class FakeCloudFormation:
    """Just enough CloudFormation: one stack whose status and events the test scripts."""

    def __init__(self, statuses: list[str], events_newest_first: list[dict[str, Any]]) -> None:
        self.statuses = statuses
        self.events = events_newest_first
        self.change_set: dict[str, Any] = {}

    def describe_stacks(self, StackName: str) -> dict[str, Any]:
        if not self.statuses:
            raise ClientError(
                {
                    "Error": {
                        "Code": "ValidationError",
                        "Message": f"Stack with id {StackName} does not exist",
                    }
                },
                "DescribeStacks",
            )
        status = self.statuses.pop(0) if len(self.statuses) > 1 else self.statuses[0]
        return {"Stacks": [{"StackId": STACK_ID, "StackName": "fleet", "StackStatus": status}]}

    def get_paginator(self, name: str) -> FakePaginator:
        assert name == "describe_stack_events"
        return FakePaginator([{"StackEvents": self.events}])

    def create_change_set(self, **kwargs: Any) -> dict[str, str]:
        self.created = kwargs
        return {"Id": "cs-1", "StackId": STACK_ID}

    def describe_change_set(self, ChangeSetName: str, NextToken: str | None = None) -> dict[str, Any]:
        return self.change_set


STACK = "AWS::CloudFormation::Stack"


def _failed_create() -> list[dict[str, Any]]:
    return [
        _event("fleet", STACK, "ROLLBACK_COMPLETE"),
        _event("TelemetryQueue", "AWS::SQS::Queue", "DELETE_COMPLETE"),
        _event(
            "TelemetryProcessorFunction",
            "AWS::Lambda::Function",
            "CREATE_FAILED",
            "Resource creation cancelled",
        ),
        _event("TelemetryBucket", "AWS::S3::Bucket", "CREATE_FAILED", "fleet-telemetry-1111 already exists"),
        _event("TelemetryQueue", "AWS::SQS::Queue", "CREATE_COMPLETE"),
        _event("fleet", STACK, "CREATE_IN_PROGRESS", "User Initiated"),
        # An earlier, unrelated operation: must never be blamed.
        _event("OldThing", "AWS::SNS::Topic", "CREATE_FAILED", "an old failure"),
        _event("fleet", STACK, "CREATE_IN_PROGRESS", "User Initiated"),
    ]


def _stacks(client: FakeCloudFormation) -> CloudFormationStacks:
    return CloudFormationStacks(client, poll_seconds=0, sleep=lambda _: None)


def test_a_failed_create_is_one_message_naming_the_first_failed_resource_and_its_reason() -> None:
    client = FakeCloudFormation(
        ["CREATE_IN_PROGRESS", "ROLLBACK_IN_PROGRESS", "ROLLBACK_COMPLETE"], _failed_create()
    )
    with pytest.raises(DeployError) as failure:
        _stacks(client).wait(STACK_ID, SUCCEEDED, timeout=60)
    assert str(failure.value) == (
        "stack fleet ended in ROLLBACK_COMPLETE: TelemetryBucket (AWS::S3::Bucket) CREATE_FAILED: "
        "fleet-telemetry-1111 already exists"
    )


def test_progress_shows_each_event_of_the_current_operation_once_oldest_first() -> None:
    events = [
        _event("fleet", STACK, "CREATE_COMPLETE"),
        _event("TelemetryQueue", "AWS::SQS::Queue", "CREATE_COMPLETE"),
        _event("fleet", STACK, "CREATE_IN_PROGRESS", "User Initiated"),
    ]
    client = FakeCloudFormation(["CREATE_IN_PROGRESS", "CREATE_COMPLETE"], events)
    shown: list[str] = []
    stack = _stacks(client).wait(STACK_ID, SUCCEEDED, timeout=60, on_event=lambda e: shown.append(e.status))
    assert stack is not None and stack["StackStatus"] == "CREATE_COMPLETE"
    assert shown == ["CREATE_IN_PROGRESS", "CREATE_COMPLETE", "CREATE_COMPLETE"]


def test_a_stack_that_fails_without_a_failed_resource_event_still_says_how_it_ended() -> None:
    client = FakeCloudFormation(
        ["UPDATE_ROLLBACK_COMPLETE"], [_event("fleet", STACK, "UPDATE_IN_PROGRESS", "User Initiated")]
    )
    with pytest.raises(
        DeployError, match="ended in UPDATE_ROLLBACK_COMPLETE without a failed resource event"
    ):
        _stacks(client).wait(STACK_ID, SUCCEEDED, timeout=60)


def test_a_deleted_stack_counts_as_deleted() -> None:
    assert (
        _stacks(FakeCloudFormation([], [])).wait(STACK_ID, frozenset({"DELETE_COMPLETE"}), timeout=1) is None
    )


def test_a_change_set_without_changes_is_success_not_an_error() -> None:
    client = FakeCloudFormation(["UPDATE_COMPLETE"], [])
    client.change_set = {
        "Status": "FAILED",
        "StatusReason": "The submitted information didn't contain changes. Submit different information.",
    }
    change_set = _stacks(client).create_change_set("fleet", "UPDATE", [], template_body="{}")
    assert change_set.no_changes and change_set.changes == []


def test_a_rejected_change_set_says_why() -> None:
    client = FakeCloudFormation(["UPDATE_COMPLETE"], [])
    client.change_set = {
        "Status": "FAILED",
        "StatusReason": "Parameter LogRetentionDays failed to satisfy constraint",
    }
    with pytest.raises(DeployError, match="rejected the change set: Parameter LogRetentionDays"):
        _stacks(client).create_change_set("fleet", "UPDATE", [], template_body="{}")


def test_a_change_set_lists_its_changes_and_requests_iam_capabilities() -> None:
    client = FakeCloudFormation(["REVIEW_IN_PROGRESS"], [])
    change = {
        "Action": "Modify",
        "LogicalResourceId": "UpdateManagerFunction",
        "ResourceType": "AWS::Lambda::Function",
    }
    client.change_set = {
        "Status": "CREATE_COMPLETE",
        "Changes": [{"ResourceChange": {**change, "Replacement": "False"}}],
    }
    change_set = _stacks(client).create_change_set("fleet", "UPDATE", [], template_body="{}")
    assert "CAPABILITY_IAM" in client.created["Capabilities"]
    table = format_changes(change_set.changes)
    assert table[0].split() == ["ACTION", "LOGICAL", "ID", "TYPE", "REPLACEMENT"]
    assert table[1].split() == ["Modify", "UpdateManagerFunction", "AWS::Lambda::Function", "False"]


TEMPLATE = {
    "Parameters": {
        name: {}
        for name in (
            "ArtifactsBucket",
            "TelemetryProcessorCodeKey",
            "UpdateManagerCodeKey",
            "LambdaArchitecture",
            "AlarmEmail",
            "LogRetentionDays",
        )
    }
}
VALUES = {
    "ArtifactsBucket": "b",
    "TelemetryProcessorCodeKey": "t.zip",
    "UpdateManagerCodeKey": "u.zip",
    "LambdaArchitecture": "arm64",
    "AlarmEmail": None,
    "LogRetentionDays": None,
}


def test_an_update_keeps_the_previous_alarm_email_and_retention_unless_given() -> None:
    parameters = {
        p["ParameterKey"]: p for p in stack_parameters(TEMPLATE, VALUES, previous=set(TEMPLATE["Parameters"]))
    }
    assert parameters["AlarmEmail"] == {"ParameterKey": "AlarmEmail", "UsePreviousValue": True}
    assert parameters["UpdateManagerCodeKey"]["ParameterValue"] == "u.zip"
    created = {p["ParameterKey"] for p in stack_parameters(TEMPLATE, VALUES, previous=None)}
    assert "AlarmEmail" not in created, "a new stack takes the template's default"


def test_a_parameter_the_template_gained_since_the_last_deploy_takes_its_default_on_update() -> None:
    # CloudFormation refuses UsePreviousValue for a key the stack does not have yet.
    before = set(TEMPLATE["Parameters"]) - {"LogRetentionDays"}
    keys = {p["ParameterKey"] for p in stack_parameters(TEMPLATE, VALUES, previous=before)}
    assert "LogRetentionDays" not in keys and "AlarmEmail" in keys


def test_a_template_without_the_code_parameters_is_refused() -> None:
    with pytest.raises(DeployError, match="does not declare the parameters UpdateManagerCodeKey"):
        stack_parameters(
            {"Parameters": {k: {} for k in TEMPLATE["Parameters"] if k != "UpdateManagerCodeKey"}},
            VALUES,
            None,
        )


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (None, "CREATE"),
        ("REVIEW_IN_PROGRESS", "CREATE"),
        ("CREATE_COMPLETE", "UPDATE"),
        ("UPDATE_ROLLBACK_COMPLETE", "UPDATE"),
    ],
)
def test_the_change_set_type_follows_the_stack_state(status: str | None, expected: str) -> None:
    assert _change_set_type("fleet", None if status is None else {"StackStatus": status}) == expected


def test_a_stack_left_in_rollback_complete_must_be_destroyed_first() -> None:
    with pytest.raises(
        DeployError, match=r"ROLLBACK_COMPLETE and cannot be updated; run .*destroy --stack-name fleet"
    ):
        _change_set_type("fleet", {"StackStatus": "ROLLBACK_COMPLETE"})


def test_a_busy_stack_is_not_touched() -> None:
    with pytest.raises(DeployError, match=r"busy \(UPDATE_IN_PROGRESS\)"):
        _change_set_type("fleet", {"StackStatus": "UPDATE_IN_PROGRESS"})


@pytest.mark.parametrize("name", ["FleetOTA", "fleet_ota", "9fleet", "a" * 38, ""])
def test_stack_names_that_cannot_prefix_bucket_names_are_refused(name: str) -> None:
    with pytest.raises(DeployError, match="invalid stack name"):
        validate_stack_name(name)


def test_the_artifacts_bucket_name_is_per_stack_account_and_region_and_a_valid_bucket_name() -> None:
    assert (
        artifacts_bucket_name("fleet", "111122223333", "eu-west-1")
        == "fleet-artifacts-111122223333-eu-west-1"
    )
    assert len(artifacts_bucket_name("a" * 37, "111122223333", "ap-southeast-2")) <= 63


def test_aws_mode_can_be_aimed_at_another_endpoint_and_defaults_to_aws_itself(monkeypatch) -> None:
    monkeypatch.delenv("FLEETOTA_ENDPOINT_URL", raising=False)
    assert Settings(mode="aws").endpoint_url is None
    monkeypatch.setenv("FLEETOTA_ENDPOINT_URL", "http://localhost:4566")
    assert Settings(mode="aws").endpoint_url == "http://localhost:4566"
    assert (
        Settings(mode="local", local_host="127.0.0.1", local_port=5000).endpoint_url
        == "http://127.0.0.1:5000"
    )
