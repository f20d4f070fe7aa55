"""What the local stack must contain, read from ``infra/template.yaml`` and resolved to local names.

Nothing here talks to AWS: provisioning, the runtime and the tests all read the same spec, so a
table key, a queue setting, an alarm threshold or a schedule is written down only in the template.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from fleetota_core.adapters.resources import Resources
from fleetota_core.errors import ConfigurationError
from fleetota_core.infra_template import DEFAULT_TEMPLATE_PATH, load_template, resources_of_type
from fleetota_core.local.template_resolver import TemplateResolver

if TYPE_CHECKING:
    from pathlib import Path

    from fleetota_core.settings import Settings

REPO_ROOT = DEFAULT_TEMPLATE_PATH.parent.parent

# CloudFormation queue properties that are plain SQS attributes.
_QUEUE_ATTRIBUTES = (
    "DelaySeconds",
    "MaximumMessageSize",
    "MessageRetentionPeriod",
    "ReceiveMessageWaitTimeSeconds",
    "VisibilityTimeout",
    "SqsManagedSseEnabled",
)
_ALARM_PROPERTIES = (
    "AlarmName",
    "AlarmDescription",
    "ActionsEnabled",
    "AlarmActions",
    "OKActions",
    "InsufficientDataActions",
    "Namespace",
    "MetricName",
    "Dimensions",
    "Statistic",
    "ExtendedStatistic",
    "Period",
    "Unit",
    "EvaluationPeriods",
    "DatapointsToAlarm",
    "Threshold",
    "ComparisonOperator",
    "TreatMissingData",
    "Metrics",
)


@dataclass(frozen=True)
class TableSpec:
    name: str
    key_schema: list[dict[str, str]]
    attribute_definitions: list[dict[str, str]]
    global_secondary_indexes: list[dict[str, Any]] = field(default_factory=list)
    ttl_attribute: str | None = None


@dataclass(frozen=True)
class QueueSpec:
    logical_id: str
    name: str
    url: str
    arn: str
    attributes: dict[str, str]

    @property
    def max_receive_count(self) -> int | None:
        policy = self.attributes.get("RedrivePolicy")
        return int(json.loads(policy)["maxReceiveCount"]) if policy else None


@dataclass(frozen=True)
class QueueNotification:
    queue_arn: str
    events: list[str]
    filter_rules: list[dict[str, str]]


@dataclass(frozen=True)
class BucketSpec:
    name: str
    versioned: bool
    notifications: list[QueueNotification]


@dataclass(frozen=True)
class FunctionSpec:
    logical_id: str
    name: str
    arn: str
    source: Path
    timeout_seconds: int
    memory_mb: int
    environment: dict[str, str]

    @property
    def key(self) -> str:
        """Short name used for handler overrides: the directory under ``lambdas/``."""
        return self.source.parent.name


@dataclass(frozen=True)
class QueueSourceSpec:
    queue_arn: str
    function: str
    batch_size: int
    report_batch_item_failures: bool
    # MaximumBatchingWindowInSeconds: how long the event source gathers messages before invoking.
    batching_window_s: float = 0.0


@dataclass(frozen=True)
class ScheduleSpec:
    name: str
    arn: str
    expression: str
    enabled: bool
    targets: list[tuple[str, str | None]]  # (function name, constant Input JSON or None)


@dataclass(frozen=True)
class StackSpec:
    """Every resource of the local stack, keyed by physical name where order does not matter."""

    stack: str
    region: str
    resources: Resources
    buckets: list[BucketSpec]
    queues: list[QueueSpec]
    tables: list[TableSpec]
    topics: dict[str, str]  # name -> ARN
    signing_keys: dict[str, dict[str, str]]  # alias -> KeySpec/KeyUsage/Description
    functions: list[FunctionSpec]
    queue_sources: list[QueueSourceSpec]
    schedules: list[ScheduleSpec]
    alarms: list[dict[str, Any]]  # put_metric_alarm arguments
    dashboards: dict[str, str]  # name -> body

    def function(self, name: str) -> FunctionSpec:
        for function in self.functions:
            if name in (function.name, function.arn, function.logical_id, function.key):
                return function
        raise ConfigurationError(f"infra/template.yaml defines no Lambda function {name!r}")

    def queue(self, arn_or_url: str) -> QueueSpec:
        for queue in self.queues:
            if arn_or_url in (queue.arn, queue.url, queue.name):
                return queue
        raise ConfigurationError(f"infra/template.yaml defines no queue {arn_or_url!r}")


def local_resolver(settings: Settings, template: dict[str, Any]) -> tuple[TemplateResolver, Resources]:
    """``template`` resolved for the local stack of ``settings``, and that stack's resource names."""
    resources = Resources.for_local(settings.stack_name, settings.region, settings.endpoint_url or "")
    resolver = TemplateResolver(
        template,
        stack=settings.stack_name,
        region=settings.region,
        endpoint_url=settings.endpoint_url or "",
        resources=resources.as_dict(),
    )
    return resolver, resources


def read_stack_spec(settings: Settings, template: dict[str, Any] | None = None) -> StackSpec:
    """The local stack for ``settings``, from ``template`` (default: ``infra/template.yaml``)."""
    template = template if template is not None else load_template()
    r, resources = local_resolver(settings, template)

    def of_type(kind: str) -> dict[str, dict[str, Any]]:
        found = resources_of_type(template, kind).items()
        return {lid: r.resolve(res.get("Properties", {})) for lid, res in found if r.include(res)}

    return StackSpec(
        stack=settings.stack_name,
        region=settings.region,
        resources=resources,
        buckets=[_bucket(r, lid, p) for lid, p in of_type("AWS::S3::Bucket").items()],
        queues=[_queue(r, lid, p) for lid, p in of_type("AWS::SQS::Queue").items()],
        tables=[_table(r, lid, p) for lid, p in of_type("AWS::DynamoDB::Table").items()],
        topics={r.physical_name(lid): r.ref(lid) for lid in of_type("AWS::SNS::Topic")},
        signing_keys=_aliased_keys(r, of_type("AWS::KMS::Alias"), of_type("AWS::KMS::Key")),
        functions=[_function(r, lid, p) for lid, p in of_type("AWS::Lambda::Function").items()],
        queue_sources=[_queue_source(p) for p in of_type("AWS::Lambda::EventSourceMapping").values()],
        schedules=[
            _schedule(r, lid, p)
            for lid, p in of_type("AWS::Events::Rule").items()
            if "ScheduleExpression" in p
        ],
        alarms=[_alarm(r, lid, p) for lid, p in of_type("AWS::CloudWatch::Alarm").items()],
        dashboards={
            p.get("DashboardName") or r.physical_name(lid): p.get("DashboardBody", "{}")
            for lid, p in of_type("AWS::CloudWatch::Dashboard").items()
        },
    )


def _bucket(r: TemplateResolver, logical_id: str, props: dict[str, Any]) -> BucketSpec:
    notifications = []
    for config in props.get("NotificationConfiguration", {}).get("QueueConfigurations", []):
        rules = config.get("Filter", {}).get("S3Key", {}).get("Rules", [])
        notifications.append(
            QueueNotification(
                queue_arn=config["Queue"],
                events=[config["Event"]],
                filter_rules=[{"Name": rule["Name"], "Value": rule["Value"]} for rule in rules],
            )
        )
    versioned = props.get("VersioningConfiguration", {}).get("Status") == "Enabled"
    return BucketSpec(name=r.physical_name(logical_id), versioned=versioned, notifications=notifications)


def _queue(r: TemplateResolver, logical_id: str, props: dict[str, Any]) -> QueueSpec:
    attributes = {name: _attribute_text(props[name]) for name in _QUEUE_ATTRIBUTES if name in props}
    for policy in ("RedrivePolicy", "RedriveAllowPolicy"):
        if policy in props:
            attributes[policy] = json.dumps(props[policy])
    return QueueSpec(
        logical_id=logical_id,
        name=r.physical_name(logical_id),
        url=r.ref(logical_id),
        arn=r.get_att(logical_id, "Arn"),
        attributes=attributes,
    )


def _attribute_text(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def _table(r: TemplateResolver, logical_id: str, props: dict[str, Any]) -> TableSpec:
    ttl = props.get("TimeToLiveSpecification", {})
    return TableSpec(
        name=r.physical_name(logical_id),
        key_schema=props["KeySchema"],
        attribute_definitions=props["AttributeDefinitions"],
        global_secondary_indexes=[
            {k: v for k, v in gsi.items() if k in ("IndexName", "KeySchema", "Projection")}
            for gsi in props.get("GlobalSecondaryIndexes", [])
        ],
        ttl_attribute=ttl.get("AttributeName") if ttl.get("Enabled") else None,
    )


def _aliased_keys(
    r: TemplateResolver, aliases: dict[str, dict[str, Any]], keys: dict[str, dict[str, Any]]
) -> dict[str, dict[str, str]]:
    # Only keys with an alias: the alias is how a later process finds the key again.
    found = {}
    for logical_id, props in aliases.items():
        key_logical_id = str(props["TargetKeyId"]).removeprefix("local-key/")
        key = keys.get(key_logical_id, {})
        found[r.physical_name(logical_id)] = {
            "KeySpec": key.get("KeySpec", "SYMMETRIC_DEFAULT"),
            "KeyUsage": key.get("KeyUsage", "ENCRYPT_DECRYPT"),
            "Description": key.get("Description", ""),
        }
    return found


def _function(r: TemplateResolver, logical_id: str, props: dict[str, Any]) -> FunctionSpec:
    # Handler "lambdas/x/handler.handler": the module path, then the function name.
    module_path = props["Handler"].rsplit(".", 1)[0]
    return FunctionSpec(
        logical_id=logical_id,
        name=r.physical_name(logical_id),
        arn=r.get_att(logical_id, "Arn"),
        source=REPO_ROOT / f"{module_path}.py",
        timeout_seconds=int(props.get("Timeout", 3)),
        memory_mb=int(props.get("MemorySize", 128)),
        environment={k: str(v) for k, v in props.get("Environment", {}).get("Variables", {}).items()},
    )


def _queue_source(props: dict[str, Any]) -> QueueSourceSpec:
    function = str(props["FunctionName"])
    return QueueSourceSpec(
        queue_arn=props["EventSourceArn"],
        function=function,
        batch_size=int(props.get("BatchSize", 10)),
        report_batch_item_failures="ReportBatchItemFailures" in props.get("FunctionResponseTypes", []),
        batching_window_s=float(props.get("MaximumBatchingWindowInSeconds", 0)),
    )


def _schedule(r: TemplateResolver, logical_id: str, props: dict[str, Any]) -> ScheduleSpec:
    return ScheduleSpec(
        name=r.physical_name(logical_id),
        arn=r.get_att(logical_id, "Arn"),
        expression=props["ScheduleExpression"],
        enabled=props.get("State", "ENABLED") == "ENABLED",
        targets=[(t["Arn"], t.get("Input")) for t in props.get("Targets", [])],
    )


def _alarm(r: TemplateResolver, logical_id: str, props: dict[str, Any]) -> dict[str, Any]:
    alarm = {name: props[name] for name in _ALARM_PROPERTIES if name in props}
    alarm["AlarmName"] = r.physical_name(logical_id)
    for number in ("Period", "EvaluationPeriods", "DatapointsToAlarm"):
        if number in alarm:
            alarm[number] = int(alarm[number])
    alarm["Threshold"] = float(alarm.get("Threshold", 0))
    return alarm
