"""Physical names of the stack's resources, from stack outputs (AWS) or the stack name (local)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import TYPE_CHECKING, Any

from fleetota_core.adapters.aws_errors import AWS_CLIENT_ERRORS, error_code, translate
from fleetota_core.errors import ConfigurationError
from fleetota_core.settings import LOCAL_ACCOUNT_ID

if TYPE_CHECKING:
    from fleetota_core.adapters.clients import ClientFactory
    from fleetota_core.settings import Settings

# Resources field -> CloudFormation output key (docs/resources.md is the contract).
OUTPUT_KEYS = {
    "telemetry_bucket": "TelemetryBucketName",
    "firmware_bucket": "FirmwareBucketName",
    "telemetry_queue_url": "TelemetryQueueUrl",
    "telemetry_dlq_url": "TelemetryDLQUrl",
    "vehicles_table": "VehiclesTableName",
    "campaigns_table": "CampaignsTableName",
    "deployments_table": "DeploymentsTableName",
    "audit_table": "AuditTableName",
    "ledger_table": "LedgerTableName",
    "alerts_topic_arn": "AlertsTopicArn",
    "job_topic_arn": "JobNotificationsTopicArn",
    "image_key_alias": "ImageKeyAlias",
    "director_key_alias": "DirectorKeyAlias",
    "telemetry_function": "TelemetryProcessorFunctionName",
    "update_function": "UpdateManagerFunctionName",
    "dashboard_name": "DashboardName",
    "registry_table": "VehicleRegistryTableName",
}


@dataclass(frozen=True)
class Resources:
    """Every resource name the code needs. Field names match ``Settings`` overrides and env vars."""

    telemetry_bucket: str
    firmware_bucket: str
    telemetry_queue_url: str
    telemetry_dlq_url: str
    vehicles_table: str
    campaigns_table: str
    deployments_table: str
    audit_table: str
    ledger_table: str
    alerts_topic_arn: str
    job_topic_arn: str
    image_key_alias: str  # signs release manifests
    director_key_alias: str  # signs job documents
    telemetry_function: str
    update_function: str
    dashboard_name: str
    registry_table: str

    @classmethod
    def for_local(cls, stack: str, region: str, endpoint_url: str) -> Resources:
        """Names the local stack provisions; deterministic so every process agrees without a lookup."""
        queue_base = f"{endpoint_url}/{LOCAL_ACCOUNT_ID}"
        topic_base = f"arn:aws:sns:{region}:{LOCAL_ACCOUNT_ID}"
        return cls(
            telemetry_bucket=f"{stack}-telemetry",
            firmware_bucket=f"{stack}-firmware",
            telemetry_queue_url=f"{queue_base}/{stack}-telemetry",
            telemetry_dlq_url=f"{queue_base}/{stack}-telemetry-dlq",
            vehicles_table=f"{stack}-vehicles",
            campaigns_table=f"{stack}-campaigns",
            deployments_table=f"{stack}-deployments",
            audit_table=f"{stack}-audit",
            ledger_table=f"{stack}-ledger",
            alerts_topic_arn=f"{topic_base}:{stack}-alerts",
            job_topic_arn=f"{topic_base}:{stack}-job-notifications",
            image_key_alias=f"alias/{stack}-image",
            director_key_alias=f"alias/{stack}-director",
            telemetry_function=f"{stack}-telemetry-processor",
            update_function=f"{stack}-update-manager",
            dashboard_name=stack,
            registry_table=f"{stack}-vehicle-registry",
        )

    @classmethod
    def from_outputs(cls, outputs: dict[str, str]) -> Resources:
        missing = [key for key in OUTPUT_KEYS.values() if key not in outputs]
        if missing:
            raise ConfigurationError(f"stack outputs are missing {', '.join(missing)}; redeploy the stack")
        return cls(**{field: outputs[key] for field, key in OUTPUT_KEYS.items()})

    def as_dict(self) -> dict[str, str]:
        return asdict(self)


def _overrides(settings: Settings) -> dict[str, Any]:
    return {f.name: getattr(settings, f.name) for f in fields(Resources) if getattr(settings, f.name)}


def stack_outputs(clients: ClientFactory, stack_name: str) -> dict[str, str]:
    """The outputs of a deployed stack, as a key -> value dict."""
    try:
        stacks = clients.cloudformation.describe_stacks(StackName=stack_name)["Stacks"]
    except AWS_CLIENT_ERRORS as exc:
        if error_code(exc) == "ValidationError":  # CloudFormation's answer for a missing stack
            raise ConfigurationError(
                f"stack {stack_name!r} not found in {clients.settings.region}: deploy it with "
                f"`python -m fleetota_core deploy --stack-name {stack_name}` or set FLEETOTA_STACK"
            ) from exc
        raise translate(exc, f"reading the outputs of stack {stack_name!r} from CloudFormation") from exc
    return {o["OutputKey"]: o["OutputValue"] for o in stacks[0].get("Outputs", [])}


def resolve_resources(settings: Settings, clients: ClientFactory | None = None) -> Resources:
    """Where each resource is. Explicit ``FLEETOTA_<FIELD>`` settings win over derived names.

    In AWS mode with every name given (as in the Lambda environment) no AWS call is made.
    """
    overrides = _overrides(settings)
    if len(overrides) == len(fields(Resources)):
        return Resources(**overrides)
    if settings.is_local:
        base = Resources.for_local(settings.stack_name, settings.region, settings.endpoint_url or "")
    else:
        if clients is None:
            raise ConfigurationError("AWS mode needs a client factory to read the stack outputs")
        base = Resources.from_outputs(stack_outputs(clients, settings.stack_name))
    return Resources(**{**base.as_dict(), **overrides})
