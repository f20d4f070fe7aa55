"""Deploy FleetOTA to an AWS account: package, upload, change set, review, execute, read the outputs.

Safe to repeat: zips are reproducible and content-addressed, so an unchanged checkout produces a
change set with no changes, which counts as success.
"""

from __future__ import annotations

import hashlib
import re
import zipfile
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, TypedDict

from fleetota_core.adapters.artifacts import BucketStore
from fleetota_core.adapters.aws_account import caller_account
from fleetota_core.adapters.cloudformation import SUCCEEDED, UNUPDATABLE, CloudFormationStacks
from fleetota_core.adapters.resources import Resources
from fleetota_core.errors import DeployError
from fleetota_core.infra_template import DEFAULT_TEMPLATE_PATH, parse_template
from fleetota_core.services.deploy.lambda_dependencies import PackageTarget
from fleetota_core.services.deploy.lambda_package import FUNCTIONS, LambdaPackage, build_packages, check_size

if TYPE_CHECKING:
    from collections.abc import Callable, Collection
    from pathlib import Path

    from fleetota_core.adapters.clients import ClientFactory

# The template says why: the stack name prefixes lower-case bucket names of at most 63 characters.
STACK_NAME_PATTERN = re.compile(r"^[a-z][a-z0-9-]{0,36}$")
CODE_KEY_PARAMETERS = {
    "telemetry_processor": "TelemetryProcessorCodeKey",
    "update_manager": "UpdateManagerCodeKey",
}
MAX_TEMPLATE_BODY = 51_200  # larger templates must be passed by S3 URL
STACK_TAGS = {"app": "fleetota"}


class TemplateSource(TypedDict, total=False):
    """How ``create_change_set`` gets the template: inline, or by URL once it is too large."""

    template_body: str
    template_url: str


class Console(Protocol):
    """Where a long operation reports progress and asks the operator."""

    def say(self, line: str) -> None: ...

    def confirm(self, question: str) -> bool: ...


@dataclass(frozen=True)
class DeployRequest:
    stack_name: str
    architecture: str = "arm64"
    alarm_email: str | None = None
    approval_min_vehicles: int | None = None
    log_retention_days: int | None = None
    telemetry_batching_window_s: int | None = None
    update_manager_memory_mb: int | None = None
    artifacts_bucket: str | None = None
    assume_yes: bool = False
    package_dir: Path | None = None
    template_path: Path = DEFAULT_TEMPLATE_PATH
    timeout_seconds: float = 3600.0
    poll_seconds: float = 5.0


@dataclass(frozen=True)
class DeployResult:
    stack_status: str
    outputs: dict[str, str]
    changed: bool


def validate_stack_name(name: str) -> None:
    if not STACK_NAME_PATTERN.match(name):
        raise DeployError(
            f"invalid stack name {name!r}: use 1-37 lower-case letters, digits and hyphens, "
            "starting with a letter (it prefixes S3 bucket names)"
        )


def artifacts_bucket_name(stack_name: str, account: str, region: str) -> str:
    return f"{stack_name}-artifacts-{account}-{region}"[:63].rstrip("-")


def prebuilt_packages(directory: Path, target: PackageTarget) -> list[LambdaPackage]:
    """Packages built earlier (``--package-dir``), as ``<function>.zip``; size-checked again."""
    packages = []
    for function in FUNCTIONS:
        path = directory / f"{function}.zip"
        if not path.is_file():
            raise DeployError(f"--package-dir {directory} has no {function}.zip")
        with zipfile.ZipFile(path) as archive:
            unzipped = sum(info.file_size for info in archive.infolist())
        package = LambdaPackage(
            function,
            path,
            hashlib.sha256(path.read_bytes()).hexdigest(),
            path.stat().st_size,
            unzipped,
            target,
        )
        check_size(package)
        packages.append(package)
    return packages


def stack_parameters(
    template: dict[str, Any], values: dict[str, str | None], previous: Collection[str] | None
) -> list[dict[str, Any]]:
    """CloudFormation parameters: given values, else the previous value on update, else the default.

    ``previous``: the parameter keys the stack has now (None for a new stack). A parameter the
    template gained since takes its default: CloudFormation refuses UsePreviousValue for it.
    """
    declared = template.get("Parameters", {})
    required = {"ArtifactsBucket", "LambdaArchitecture", *CODE_KEY_PARAMETERS.values()}
    missing = sorted(required - set(declared))
    if missing:
        raise DeployError(f"the template does not declare the parameters {', '.join(missing)}")
    parameters = []
    for key in declared:
        value = values.get(key)
        if value is not None:
            parameters.append({"ParameterKey": key, "ParameterValue": value})
        elif previous is not None and key in previous:
            # Keeps what the operator chose last time (an alarm e-mail) instead of resetting it.
            parameters.append({"ParameterKey": key, "UsePreviousValue": True})
    return parameters


def format_changes(changes: list[Any]) -> list[str]:
    rows = [("ACTION", "LOGICAL ID", "TYPE", "REPLACEMENT")]
    rows += [(c.action, c.logical_id, c.resource_type, c.replacement or "-") for c in changes]
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    return [f"  {a:<{widths[0]}}  {b:<{widths[1]}}  {c:<{widths[2]}}  {d}" for a, b, c, d in rows]


def format_outputs(outputs: dict[str, str]) -> list[str]:
    width = max((len(key) for key in outputs), default=0)
    return [f"  {key:<{width}}  {value}" for key, value in sorted(outputs.items())]


def deploy(
    request: DeployRequest,
    clients: ClientFactory,
    console: Console,
    build: Callable[[PackageTarget], list[LambdaPackage]] = build_packages,
) -> DeployResult:
    """Create or update the stack; see the module docstring. Raises :class:`DeployError` on failure."""
    validate_stack_name(request.stack_name)
    region = clients.settings.region
    account = caller_account(clients)
    console.say(f"==> deploying stack {request.stack_name} to account {account} in {region}")

    target = PackageTarget.lambda_runtime(request.architecture)
    if request.package_dir is not None:
        packages = prebuilt_packages(request.package_dir, target)
    else:
        console.say(
            f"==> building Lambda packages for python{target.python_version} on {target.architecture}"
        )
        packages = build(target)
    for package in packages:
        console.say(
            f"    {package.function}: {package.zipped_bytes / 1e6:.1f} MB zipped, "
            f"{package.unzipped_bytes / 1e6:.1f} MB unzipped"
        )

    bucket = request.artifacts_bucket or artifacts_bucket_name(request.stack_name, account, region)
    store = BucketStore(clients.s3)
    if store.ensure_bucket(bucket, region):
        console.say(f"==> created artifacts bucket {bucket} (encrypted, public access blocked)")
    for package in packages:
        uploaded = store.upload_once(bucket, package.s3_key, package.path)
        console.say(f"    s3://{bucket}/{package.s3_key} {'uploaded' if uploaded else 'already there'}")

    template_text = request.template_path.read_text(encoding="utf-8")
    template_source = _template_source(template_text, store, bucket, clients)
    stacks = CloudFormationStacks(clients.cloudformation, poll_seconds=request.poll_seconds)
    existing = stacks.describe(request.stack_name)
    change_set_type = _change_set_type(request.stack_name, existing)
    values: dict[str, str | None] = {
        "ArtifactsBucket": bucket,
        "LambdaArchitecture": request.architecture,
        "AlarmEmail": request.alarm_email,
        "ApprovalMinVehicles": None
        if request.approval_min_vehicles is None
        else str(request.approval_min_vehicles),
        "LogRetentionDays": None if request.log_retention_days is None else str(request.log_retention_days),
        "TelemetryBatchingWindowSeconds": None
        if request.telemetry_batching_window_s is None
        else str(request.telemetry_batching_window_s),
        "UpdateManagerMemoryMB": None
        if request.update_manager_memory_mb is None
        else str(request.update_manager_memory_mb),
        **{CODE_KEY_PARAMETERS[p.function]: p.s3_key for p in packages},
    }
    previous = {p["ParameterKey"] for p in (existing or {}).get("Parameters", [])}
    updating = change_set_type == "UPDATE"
    parameters = stack_parameters(parse_template(template_text), values, previous if updating else None)

    if existing is not None and updating and _unchanged(stacks, existing, template_text, parameters):
        # What CloudFormation would answer with an empty change set, known without one. (An endpoint
        # that reads a large template from S3 may not compare it, and would run an empty update.)
        console.say("==> no changes: the stack is already up to date")
        return _finish(stacks, request.stack_name, console, changed=False)
    console.say(f"==> creating a {change_set_type} change set")
    change_set = stacks.create_change_set(
        request.stack_name, change_set_type, parameters, tags=STACK_TAGS, **template_source
    )
    if change_set.no_changes:
        stacks.delete_change_set(change_set.change_set_id)
        console.say("==> no changes: the stack is already up to date")
        return _finish(stacks, request.stack_name, console, changed=False)
    for line in format_changes(change_set.changes):
        console.say(line)
    if not request.assume_yes and not console.confirm(f"Execute this change set on {request.stack_name}?"):
        stacks.delete_change_set(change_set.change_set_id)
        if change_set_type == "CREATE":
            # A declined CREATE leaves an empty REVIEW_IN_PROGRESS stack behind; remove it.
            stacks.delete_stack(change_set.stack_id)
        raise DeployError("deploy cancelled: the change set was not executed and nothing changed")

    console.say("==> executing the change set")
    stacks.execute_change_set(change_set.change_set_id)
    stacks.wait(
        change_set.stack_id,
        SUCCEEDED,
        request.timeout_seconds,
        on_event=lambda event: console.say(event.line()),
    )
    return _finish(stacks, request.stack_name, console, changed=True)


def _change_set_type(stack_name: str, existing: dict[str, Any] | None) -> str:
    if existing is None or existing["StackStatus"] == "REVIEW_IN_PROGRESS":
        return "CREATE"
    status = existing["StackStatus"]
    if status in UNUPDATABLE:
        raise DeployError(
            f"stack {stack_name} is in {status} and cannot be updated; run "
            f"`python -m fleetota_core destroy --stack-name {stack_name}` and deploy again"
        )
    if status.endswith("_IN_PROGRESS"):
        raise DeployError(f"stack {stack_name} is busy ({status}); wait for it to finish and deploy again")
    return "UPDATE"


def _unchanged(
    stacks: CloudFormationStacks, existing: dict[str, Any], template: str, parameters: list[dict[str, Any]]
) -> bool:
    """Whether the stack already runs ``template`` with these parameters (kept ones count as equal)."""
    before = {p["ParameterKey"]: p.get("ParameterValue") for p in existing.get("Parameters", [])}
    if set(before) != {p["ParameterKey"] for p in parameters}:
        return False
    for p in parameters:
        if not p.get("UsePreviousValue") and before[p["ParameterKey"]] != p["ParameterValue"]:
            return False
    return stacks.template_body(existing["StackName"]) == template


def _template_source(text: str, store: BucketStore, bucket: str, clients: ClientFactory) -> TemplateSource:
    if len(text.encode()) <= MAX_TEMPLATE_BODY:
        return {"template_body": text}
    key = f"templates/{hashlib.sha256(text.encode()).hexdigest()[:16]}.yaml"
    store.put_text(bucket, key, text)
    # CloudFormation reads the template from S3 itself; an emulated endpoint (moto, LocalStack) reads
    # AWS-style URLs from its own S3 too, so the URL names S3, never the endpoint we talk to.
    region = clients.settings.region
    return {"template_url": f"https://{bucket}.s3.{region}.amazonaws.com/{key}"}


def _finish(stacks: CloudFormationStacks, stack_name: str, console: Console, changed: bool) -> DeployResult:
    stack = stacks.describe(stack_name)
    if stack is None:
        raise DeployError(f"stack {stack_name} disappeared after the deploy")
    outputs = stacks.outputs(stack)
    # Fails loudly if the template and docs/resources.md disagree: the dashboard would not find it.
    Resources.from_outputs(outputs)
    console.say(f"==> stack {stack_name}: {stack['StackStatus']}")
    for line in format_outputs(outputs):
        console.say(line)
    console.say(
        f"==> use it: FLEETOTA_MODE=aws FLEETOTA_STACK={stack_name} FLEETOTA_REGION={stacks_region(stack)} "
        "bash scripts/run.sh"
    )
    return DeployResult(stack_status=stack["StackStatus"], outputs=outputs, changed=changed)


def stacks_region(stack: dict[str, Any]) -> str:
    # arn:aws:cloudformation:<region>:<account>:stack/<name>/<id>
    return stack["StackId"].split(":")[3]
