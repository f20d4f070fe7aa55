"""Tear a FleetOTA stack down: empty its buckets, delete the stack, then what it retained.

The template retains the telemetry and firmware buckets and the audit table so that deleting a
stack by accident loses no evidence. ``destroy`` is the deliberate path: it says what it will
delete, asks, and removes those too unless ``keep_retained``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from fleetota_core.adapters.artifacts import BucketStore
from fleetota_core.adapters.aws_account import caller_account
from fleetota_core.adapters.cloudformation import CloudFormationStacks
from fleetota_core.adapters.retained import delete_table
from fleetota_core.errors import DeployError
from fleetota_core.infra_template import parse_template
from fleetota_core.services.deploy.stack_deploy import artifacts_bucket_name

if TYPE_CHECKING:
    from fleetota_core.adapters.clients import ClientFactory
    from fleetota_core.services.deploy.stack_deploy import Console

BUCKET = "AWS::S3::Bucket"
TABLE = "AWS::DynamoDB::Table"


@dataclass(frozen=True)
class DestroyRequest:
    stack_name: str
    assume_yes: bool = False
    keep_retained: bool = False
    delete_artifacts: bool = False
    artifacts_bucket: str | None = None
    timeout_seconds: float = 3600.0
    poll_seconds: float = 5.0


@dataclass(frozen=True)
class StackResource:
    logical_id: str
    resource_type: str
    physical_id: str
    retained: bool


def _resources(stacks: CloudFormationStacks, stack_name: str) -> list[StackResource]:
    template = parse_template(stacks.deployed_template(stack_name))
    policies = {
        lid: body.get("DeletionPolicy", "Delete") for lid, body in template.get("Resources", {}).items()
    }
    return [
        StackResource(
            logical_id=r["LogicalResourceId"],
            resource_type=r["ResourceType"],
            physical_id=r.get("PhysicalResourceId", ""),
            retained=policies.get(r["LogicalResourceId"]) == "Retain",
        )
        for r in stacks.stack_resources(stack_name)
        if r.get("PhysicalResourceId")
    ]


def destroy(request: DestroyRequest, clients: ClientFactory, console: Console) -> bool:
    """Delete the stack (and its retained data unless asked to keep it). False if the operator declined."""
    region = clients.settings.region
    account = caller_account(clients)
    stacks = CloudFormationStacks(clients.cloudformation, poll_seconds=request.poll_seconds)
    store = BucketStore(clients.s3)
    artifacts = request.artifacts_bucket or artifacts_bucket_name(request.stack_name, account, region)
    stack = stacks.describe(request.stack_name)
    resources = _resources(stacks, request.stack_name) if stack else []
    buckets = [r for r in resources if r.resource_type == BUCKET]
    retained = [r for r in resources if r.retained]

    console.say(f"==> destroy in account {account}, {region}:")
    if stack is None:
        console.say(f"    stack {request.stack_name} does not exist")
    else:
        console.say(
            f"    stack {request.stack_name} ({stack['StackStatus']}) and all {len(resources)} resources"
        )
        for bucket in buckets:
            if request.keep_retained and bucket.retained:
                console.say(f"    keep bucket {bucket.physical_id} and its objects (--keep-retained)")
            else:
                console.say(f"    PERMANENTLY delete every object version in bucket {bucket.physical_id}")
        for resource in retained:
            verb = "keep" if request.keep_retained else "delete"
            console.say(f"    {verb} retained {resource.resource_type} {resource.physical_id}")
    if request.delete_artifacts:
        console.say(f"    delete the artifacts bucket {artifacts}")
    if stack is None and not request.delete_artifacts:
        return True
    if not request.assume_yes and not console.confirm("Delete all of this? It cannot be undone."):
        console.say("==> nothing deleted")
        return False

    for bucket in buckets:
        if not (request.keep_retained and bucket.retained):
            console.say(
                f"==> emptying {bucket.physical_id}: {store.empty(bucket.physical_id)} objects removed"
            )
    if stack is not None:
        console.say(f"==> deleting stack {request.stack_name}")
        stacks.delete_stack(stack["StackId"])
        stacks.wait(stack["StackId"], frozenset({"DELETE_COMPLETE"}), request.timeout_seconds)
        console.say(f"==> stack {request.stack_name} deleted")
    if not request.keep_retained:
        for resource in retained:
            _delete_retained(resource, store, clients, console)
    if request.delete_artifacts and store.exists(artifacts):
        store.empty(artifacts)
        store.delete_bucket(artifacts)
        console.say(f"==> deleted artifacts bucket {artifacts}")
    return True


def _delete_retained(
    resource: StackResource, store: BucketStore, clients: ClientFactory, console: Console
) -> None:
    if resource.resource_type == BUCKET:
        if store.exists(resource.physical_id):
            # Emptied again: something may have written between the first pass and the stack deletion.
            store.empty(resource.physical_id)
            store.delete_bucket(resource.physical_id)
    elif resource.resource_type == TABLE:
        delete_table(clients.dynamodb, resource.physical_id)
    else:
        raise DeployError(
            f"destroy does not know how to delete retained {resource.resource_type} {resource.physical_id}; "
            "delete it in the console"
        )
    console.say(f"==> deleted retained {resource.resource_type} {resource.physical_id}")
