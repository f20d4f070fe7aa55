"""Resolves CloudFormation intrinsics in ``infra/template.yaml`` to the local stack's names and ARNs.

The local stack is provisioned with boto3 from the template's own values, so ``!Ref``, ``!GetAtt``
and ``!Sub`` must yield the physical names the local stack uses (``Resources.for_local``).
"""

from __future__ import annotations

import re
from typing import Any

from fleetota_core.errors import ConfigurationError
from fleetota_core.settings import LOCAL_ACCOUNT_ID

# Logical ID -> Resources field (docs/resources.md); these names win over the template's own.
LOGICAL_TO_FIELD = {
    "TelemetryBucket": "telemetry_bucket",
    "FirmwareBucket": "firmware_bucket",
    "TelemetryQueue": "telemetry_queue_url",
    "TelemetryDLQ": "telemetry_dlq_url",
    "VehiclesTable": "vehicles_table",
    "CampaignsTable": "campaigns_table",
    "DeploymentsTable": "deployments_table",
    "AuditTable": "audit_table",
    "LedgerTable": "ledger_table",
    "VehicleRegistryTable": "registry_table",
    "AlertsTopic": "alerts_topic_arn",
    "JobNotificationsTopic": "job_topic_arn",
    "ImageKeyAlias": "image_key_alias",
    "DirectorKeyAlias": "director_key_alias",
    "TelemetryProcessorFunction": "telemetry_function",
    "UpdateManagerFunction": "update_function",
    "Dashboard": "dashboard_name",
}

# The property that names a resource, per type.
_NAME_PROPERTY = {
    "AWS::S3::Bucket": "BucketName",
    "AWS::SQS::Queue": "QueueName",
    "AWS::DynamoDB::Table": "TableName",
    "AWS::SNS::Topic": "TopicName",
    "AWS::Lambda::Function": "FunctionName",
    "AWS::Events::Rule": "Name",
    "AWS::CloudWatch::Alarm": "AlarmName",
    "AWS::KMS::Alias": "AliasName",
    "AWS::Logs::LogGroup": "LogGroupName",
    "AWS::CloudWatch::Dashboard": "DashboardName",
}

_SUB_VARIABLE = re.compile(r"\$\{(!?)([^}]+)\}")
NO_VALUE = object()


class TemplateResolver:
    """Evaluates intrinsic functions against one local stack (name, region, endpoint)."""

    def __init__(
        self,
        template: dict[str, Any],
        *,
        stack: str,
        region: str,
        endpoint_url: str,
        resources: dict[str, str],
        parameters: dict[str, str] | None = None,
    ) -> None:
        self.template = template
        self.stack = stack
        self.region = region
        self.endpoint_url = endpoint_url
        self.resources = resources
        self.parameters = {
            name: str(spec.get("Default", "")) for name, spec in template.get("Parameters", {}).items()
        } | dict(parameters or {})
        self._pseudo = {
            "AWS::StackName": stack,
            "AWS::Region": region,
            "AWS::AccountId": LOCAL_ACCOUNT_ID,
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::StackId": f"arn:aws:cloudformation:{region}:{LOCAL_ACCOUNT_ID}:stack/{stack}/local",
        }

    # ------------------------------------------------------------------ names
    def resource(self, logical_id: str) -> dict[str, Any]:
        try:
            return self.template["Resources"][logical_id]
        except KeyError as exc:
            raise ConfigurationError(f"infra/template.yaml has no resource {logical_id!r}") from exc

    def physical_name(self, logical_id: str) -> str:
        """The local name: the resource contract first, then the template's name property."""
        field = LOGICAL_TO_FIELD.get(logical_id)
        if field:
            value = self.resources[field]
            # Queue URLs and topic ARNs end with the name.
            return value.rsplit("/", 1)[-1] if field.endswith("_url") else value.rsplit(":", 1)[-1]
        resource = self.resource(logical_id)
        prop = _NAME_PROPERTY.get(resource.get("Type", ""))
        if prop and prop in resource.get("Properties", {}):
            return str(self.resolve(resource["Properties"][prop]))
        return f"{self.stack}-{logical_id}"

    def ref(self, name: str) -> Any:
        if name in self._pseudo:
            return self._pseudo[name]
        if name == "AWS::NoValue":
            return NO_VALUE
        if name in self.parameters:
            return self.parameters[name]
        kind = self.resource(name).get("Type", "")
        physical = self.physical_name(name)
        if kind == "AWS::SQS::Queue":
            return f"{self.endpoint_url}/{LOCAL_ACCOUNT_ID}/{physical}"
        if kind == "AWS::SNS::Topic":
            return self._arn("sns", physical)
        if kind == "AWS::KMS::Key":
            # Key IDs exist only once created; provisioning targets keys through their alias.
            return f"local-key/{name}"
        return physical

    def get_att(self, logical_id: str, attribute: str) -> str:
        kind = self.resource(logical_id).get("Type", "")
        physical = self.physical_name(logical_id)
        if attribute in ("QueueName", "TopicName", "Name"):
            return physical
        if attribute == "QueueUrl":
            return self.ref(logical_id)
        if attribute != "Arn":
            raise ConfigurationError(f"the local stack cannot resolve !GetAtt {logical_id}.{attribute}")
        arns = {
            "AWS::S3::Bucket": f"arn:aws:s3:::{physical}",
            "AWS::SQS::Queue": self._arn("sqs", physical),
            "AWS::SNS::Topic": self._arn("sns", physical),
            "AWS::DynamoDB::Table": self._arn("dynamodb", f"table/{physical}"),
            "AWS::Lambda::Function": self._arn("lambda", f"function:{physical}"),
            "AWS::Events::Rule": self._arn("events", f"rule/{physical}"),
            "AWS::CloudWatch::Alarm": self._arn("cloudwatch", f"alarm:{physical}"),
            "AWS::Logs::LogGroup": self._arn("logs", f"log-group:{physical}:*"),
            "AWS::KMS::Key": self._arn("kms", f"key/{logical_id}"),
            "AWS::IAM::Role": f"arn:aws:iam::{LOCAL_ACCOUNT_ID}:role/{physical}",
        }
        return arns.get(kind, self._arn("local", physical))

    def _arn(self, service: str, resource: str) -> str:
        return f"arn:aws:{service}:{self.region}:{LOCAL_ACCOUNT_ID}:{resource}"

    # ------------------------------------------------------------------ intrinsics
    def condition(self, name: str) -> bool:
        try:
            return bool(self.resolve(self.template["Conditions"][name]))
        except KeyError as exc:
            raise ConfigurationError(f"infra/template.yaml has no condition {name!r}") from exc

    def include(self, resource: dict[str, Any]) -> bool:
        """Whether a resource exists for this stack (its ``Condition`` holds)."""
        return "Condition" not in resource or self.condition(resource["Condition"])

    def resolve(self, value: Any) -> Any:
        """``value`` with every intrinsic function evaluated; ``AWS::NoValue`` entries dropped."""
        if isinstance(value, list):
            return [item for item in (self.resolve(v) for v in value) if item is not NO_VALUE]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((key, arg),) = value.items()
            if key == "Ref":
                return self.ref(arg)
            if key == "Condition":
                return self.condition(arg)
            if key.startswith("Fn::"):
                return self._function(key[4:], arg)
        resolved = {k: self.resolve(v) for k, v in value.items()}
        return {k: v for k, v in resolved.items() if v is not NO_VALUE}

    def _function(self, name: str, arg: Any) -> Any:
        if name == "GetAtt":
            logical_id, attribute = arg if isinstance(arg, list) else str(arg).split(".", 1)
            return self.get_att(logical_id, attribute)
        if name == "Sub":
            return self._sub(arg)
        if name == "Join":
            separator, items = arg
            return str(separator).join(str(i) for i in self.resolve(items))
        if name == "Select":
            index, items = self.resolve(arg)
            return items[int(index)]
        if name == "Split":
            separator, text = self.resolve(arg)
            return str(text).split(separator)
        if name == "If":
            condition, when_true, when_false = arg
            return self.resolve(when_true if self.condition(condition) else when_false)
        if name == "Equals":
            left, right = self.resolve(arg)
            return str(left) == str(right)
        if name == "Not":
            return not self.resolve(arg)[0]
        if name == "And":
            return all(self.resolve(arg))
        if name == "Or":
            return any(self.resolve(arg))
        raise ConfigurationError(f"the local stack cannot evaluate Fn::{name} in infra/template.yaml")

    def _sub(self, arg: Any) -> str:
        text, variables = (arg, {}) if isinstance(arg, str) else (arg[0], self.resolve(arg[1]))

        def substitute(match: re.Match[str]) -> str:
            escaped, name = match.group(1), match.group(2).strip()
            if escaped:
                return "${" + name + "}"
            if name in variables:
                return str(variables[name])
            if "." in name and not name.startswith("AWS::"):
                return str(self.get_att(*name.split(".", 1)))
            return str(self.ref(name))

        return _SUB_VARIABLE.sub(substitute, text)
