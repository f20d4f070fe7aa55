"""CloudFormation stacks through change sets: create, review, execute, wait and explain failures."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from fleetota_core.errors import DeployError

if TYPE_CHECKING:
    from collections.abc import Callable

SUCCEEDED = frozenset({"CREATE_COMPLETE", "UPDATE_COMPLETE", "IMPORT_COMPLETE"})
# Stacks in these states cannot take an update: AWS only allows deleting them.
UNUPDATABLE = frozenset({"ROLLBACK_COMPLETE", "ROLLBACK_FAILED", "DELETE_FAILED", "CREATE_FAILED"})
_NO_CHANGES = ("didn't contain changes", "No updates are to be performed")
_CAPABILITIES = ["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM", "CAPABILITY_AUTO_EXPAND"]


@dataclass(frozen=True)
class ResourceChange:
    action: str
    logical_id: str
    resource_type: str
    replacement: str


@dataclass(frozen=True)
class ChangeSet:
    change_set_id: str
    stack_id: str
    change_set_type: str
    changes: list[ResourceChange]
    no_changes: bool = False


@dataclass(frozen=True)
class StackEvent:
    event_id: str
    logical_id: str
    resource_type: str
    status: str
    reason: str

    def line(self) -> str:
        suffix = f"  {self.reason}" if self.reason else ""
        return f"  {self.status:<22} {self.resource_type:<34} {self.logical_id}{suffix}"


def _event(raw: dict[str, Any]) -> StackEvent:
    return StackEvent(
        event_id=raw.get("EventId", ""),
        logical_id=raw.get("LogicalResourceId", ""),
        resource_type=raw.get("ResourceType", ""),
        status=raw.get("ResourceStatus", ""),
        reason=raw.get("ResourceStatusReason", "") or "",
    )


def _is_missing_stack(exc: ClientError) -> bool:
    error = exc.response.get("Error", {})
    return error.get("Code") == "ValidationError" and "does not exist" in error.get("Message", "")


class CloudFormationStacks:
    """Stack operations on an injected CloudFormation client.

    Parameters
    ----------
    client:
        A boto3 CloudFormation client (``clients.cloudformation``).
    poll_seconds:
        Pause between status reads; tests against moto use a small value.
    """

    def __init__(
        self, client: Any, poll_seconds: float = 5.0, sleep: Callable[[float], None] = time.sleep
    ) -> None:
        self.client = client
        self.poll_seconds = poll_seconds
        self._sleep = sleep

    def describe(self, stack_name: str) -> dict[str, Any] | None:
        """The stack, or None if it does not exist."""
        try:
            return self.client.describe_stacks(StackName=stack_name)["Stacks"][0]
        except ClientError as exc:
            if _is_missing_stack(exc):
                return None
            raise

    @staticmethod
    def outputs(stack: dict[str, Any]) -> dict[str, str]:
        return {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}

    def template_body(self, stack_name: str) -> str:
        """The template the stack was last deployed with, as submitted."""
        body = self.client.get_template(StackName=stack_name, TemplateStage="Original")["TemplateBody"]
        return body if isinstance(body, str) else json.dumps(body)

    def create_change_set(
        self,
        stack_name: str,
        change_set_type: str,
        parameters: list[dict[str, Any]],
        template_body: str | None = None,
        template_url: str | None = None,
        tags: dict[str, str] | None = None,
        timeout: float = 600.0,
    ) -> ChangeSet:
        """Create a change set and wait until CloudFormation has computed it."""
        name = f"fleetota-{datetime.now(UTC):%Y%m%d%H%M%S}"
        template = {"TemplateBody": template_body} if template_body else {"TemplateURL": template_url}
        try:
            created = self.client.create_change_set(
                StackName=stack_name,
                ChangeSetName=name,
                ChangeSetType=change_set_type,
                Parameters=parameters,
                Capabilities=_CAPABILITIES,
                Tags=[{"Key": key, "Value": value} for key, value in (tags or {}).items()],
                **template,
            )
        except ClientError as exc:
            # Some endpoints refuse an empty update outright instead of returning a FAILED change set.
            if any(marker in str(exc) for marker in _NO_CHANGES):
                return ChangeSet("", stack_name, change_set_type, [], no_changes=True)
            raise
        return self._wait_change_set(created["Id"], created["StackId"], change_set_type, timeout)

    def _wait_change_set(self, change_set_id: str, stack_id: str, kind: str, timeout: float) -> ChangeSet:
        deadline = time.monotonic() + timeout
        while True:
            described = self.client.describe_change_set(ChangeSetName=change_set_id)
            status = described.get("Status", "")
            if status == "CREATE_COMPLETE":
                return ChangeSet(change_set_id, stack_id, kind, self._changes(change_set_id, described))
            if status == "FAILED":
                reason = described.get("StatusReason", "")
                if any(marker in reason for marker in _NO_CHANGES):
                    return ChangeSet(change_set_id, stack_id, kind, [], no_changes=True)
                raise DeployError(f"CloudFormation rejected the change set: {reason or status}")
            if time.monotonic() > deadline:
                raise DeployError(f"the change set was still {status} after {timeout:.0f} s")
            self._sleep(self.poll_seconds)

    def _changes(self, change_set_id: str, first_page: dict[str, Any]) -> list[ResourceChange]:
        page, changes = first_page, []
        while True:
            for change in page.get("Changes", []):
                rc = change.get("ResourceChange", {})
                changes.append(
                    ResourceChange(
                        action=rc.get("Action", ""),
                        logical_id=rc.get("LogicalResourceId", ""),
                        resource_type=rc.get("ResourceType", ""),
                        replacement=rc.get("Replacement", "") or "",
                    )
                )
            token = page.get("NextToken")
            if not token:
                return changes
            page = self.client.describe_change_set(ChangeSetName=change_set_id, NextToken=token)

    def delete_change_set(self, change_set_id: str) -> None:
        if change_set_id:
            self.client.delete_change_set(ChangeSetName=change_set_id)

    def execute_change_set(self, change_set_id: str) -> None:
        self.client.execute_change_set(ChangeSetName=change_set_id)

    def delete_stack(self, stack_id: str) -> None:
        self.client.delete_stack(StackName=stack_id)

    def stack_resources(self, stack_name: str) -> list[dict[str, Any]]:
        paginator = self.client.get_paginator("list_stack_resources")
        return [
            r for page in paginator.paginate(StackName=stack_name) for r in page["StackResourceSummaries"]
        ]

    def deployed_template(self, stack_name: str) -> str:
        body = self.client.get_template(StackName=stack_name, TemplateStage="Original")["TemplateBody"]
        # boto3 hands JSON templates back already parsed.
        return body if isinstance(body, str) else json.dumps(body)

    def operation_events(self, stack_id: str) -> list[StackEvent]:
        """Events of the stack's latest operation, oldest first.

        CloudFormation lists events newest first; the operation starts at the stack's own
        ``*_IN_PROGRESS`` event with reason "User Initiated". Reading that marker avoids trusting
        the local clock against AWS's.
        """
        events: list[StackEvent] = []
        paginator = self.client.get_paginator("describe_stack_events")
        for page in paginator.paginate(StackName=stack_id):
            for raw in page["StackEvents"]:
                event = _event(raw)
                events.append(event)
                if raw.get("ResourceType") == "AWS::CloudFormation::Stack" and (
                    event.status.endswith("_IN_PROGRESS") and event.reason == "User Initiated"
                ):
                    return list(reversed(events))
        return list(reversed(events))

    @staticmethod
    def first_failure(events: list[StackEvent]) -> StackEvent | None:
        """The failure that started it all: later resources only report they were cancelled."""
        failed = [
            e
            for e in events
            if e.status.endswith("_FAILED") and e.resource_type != "AWS::CloudFormation::Stack"
        ]
        root_causes = [e for e in failed if "cancelled" not in e.reason.lower()]
        candidates = root_causes or failed
        return candidates[0] if candidates else None

    def wait(
        self,
        stack_id: str,
        done: frozenset[str],
        timeout: float,
        on_event: Callable[[StackEvent], None] | None = None,
    ) -> dict[str, Any] | None:
        """Poll until the stack reaches a state in ``done`` (None once deleted), else explain the failure."""
        deadline = time.monotonic() + timeout
        shown: set[str] = set()
        while True:
            stack = self.describe(stack_id)
            status = stack["StackStatus"] if stack else "DELETE_COMPLETE"
            if on_event is not None and stack is not None:
                for event in self.operation_events(stack_id):
                    if event.event_id not in shown:
                        shown.add(event.event_id)
                        on_event(event)
            if status in done:
                return stack
            if not status.endswith("_IN_PROGRESS"):
                raise DeployError(self._failure_message(stack_id, status))
            if time.monotonic() > deadline:
                raise DeployError(f"stack {stack_id} was still {status} after {timeout:.0f} s")
            self._sleep(self.poll_seconds)

    def _failure_message(self, stack_id: str, status: str) -> str:
        failure = self.first_failure(self.operation_events(stack_id))
        name = stack_id.split("/")[1] if stack_id.startswith("arn:") else stack_id
        if failure is None:
            return f"stack {name} ended in {status} without a failed resource event"
        return (
            f"stack {name} ended in {status}: {failure.logical_id} ({failure.resource_type}) "
            f"{failure.status}: {failure.reason or 'no reason given'}"
        )
