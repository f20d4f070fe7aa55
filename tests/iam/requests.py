"""What IAM checks for each boto3 call: its action(s) and resource ARN(s), per the Service
Authorization Reference. An operation not listed here raises :class:`UnmappedCall`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from tests.iam.policy import Request

if TYPE_CHECKING:
    from collections.abc import Callable

    from tests.iam.principals import TemplateFacts


# A GetObject/HeadObject that found no object: S3 says 404 (not 403) only with s3:ListBucket.
MISSING_KEY = "missing key answered 404"


class UnmappedCall(LookupError):
    """A recorded operation has no IAM mapping here: add one rather than let it pass unchecked."""


@dataclass(frozen=True)
class Call:
    """One AWS call as a principal made it (or would make it, for a presigned URL or a log write)."""

    principal: str
    service: str  # botocore service name: s3, dynamodb, sqs, sns, kms, cloudwatch, logs, sts
    operation: str  # API operation name: GetObject, Query, ...
    params: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)
    tags: tuple[tuple[str, str], ...] = ()  # principal (session) tags, e.g. (("vin", "..."),)
    how: str = "call"  # "call", "presigned URL", "Lambda log delivery", MISSING_KEY


def _s3(call: Call, facts: TemplateFacts) -> list[Request]:
    p, op = call.params, call.operation
    bucket = f"arn:aws:s3:::{p['Bucket']}"
    if call.how == MISSING_KEY:
        return [Request("s3:ListBucket", bucket)]
    objects = {
        "GetObject": "s3:GetObjectVersion" if p.get("VersionId") else "s3:GetObject",
        "HeadObject": "s3:GetObjectVersion" if p.get("VersionId") else "s3:GetObject",
        "PutObject": "s3:PutObject",
        "DeleteObject": "s3:DeleteObjectVersion" if p.get("VersionId") else "s3:DeleteObject",
    }
    if op in objects:
        return [Request(objects[op], f"{bucket}/{p['Key']}")]
    if op == "DeleteObjects":
        return [
            Request(
                "s3:DeleteObjectVersion" if o.get("VersionId") else "s3:DeleteObject", f"{bucket}/{o['Key']}"
            )
            for o in p["Delete"]["Objects"]
        ]
    if op in ("ListObjectsV2", "ListObjects"):
        return [Request("s3:ListBucket", bucket, {"s3:prefix": p.get("Prefix", "")})]
    if op == "ListObjectVersions":
        return [Request("s3:ListBucketVersions", bucket, {"s3:prefix": p.get("Prefix", "")})]
    if op == "HeadBucket":
        return [Request("s3:ListBucket", bucket)]
    raise UnmappedCall(op)


def _table_arn(facts: TemplateFacts, table: str, index: str | None = None) -> str:
    arn = f"arn:aws:dynamodb:{facts.region}:{facts.account}:table/{table}"
    return f"{arn}/index/{index}" if index else arn


def _dynamodb(call: Call, facts: TemplateFacts) -> list[Request]:
    p, op = call.params, call.operation
    single = {"GetItem", "PutItem", "UpdateItem", "DeleteItem", "DescribeTable", "Query", "Scan"}
    if op in single:
        return [Request(f"dynamodb:{op}", _table_arn(facts, p["TableName"], p.get("IndexName")))]
    if op in ("BatchGetItem", "BatchWriteItem"):
        return [Request(f"dynamodb:{op}", _table_arn(facts, table)) for table in p["RequestItems"]]
    if op == "TransactWriteItems":
        kinds = {
            "Put": "PutItem",
            "Update": "UpdateItem",
            "Delete": "DeleteItem",
            "ConditionCheck": "ConditionCheckItem",
        }
        return [
            Request(f"dynamodb:{kinds[kind]}", _table_arn(facts, body["TableName"]))
            for item in p["TransactItems"]
            for kind, body in item.items()
        ]
    if op == "TransactGetItems":
        return [
            Request("dynamodb:GetItem", _table_arn(facts, i["Get"]["TableName"])) for i in p["TransactItems"]
        ]
    raise UnmappedCall(op)


def _queue_arn(facts: TemplateFacts, url_or_name: str) -> str:
    name = urlparse(url_or_name).path.rsplit("/", 1)[-1] if "/" in url_or_name else url_or_name
    return f"arn:aws:sqs:{facts.region}:{facts.account}:{name}"


def _sqs(call: Call, facts: TemplateFacts) -> list[Request]:
    p, op = call.params, call.operation
    batch = {
        "DeleteMessageBatch": "DeleteMessage",
        "SendMessageBatch": "SendMessage",
        "ChangeMessageVisibilityBatch": "ChangeMessageVisibility",
    }
    if op == "CreateQueue":
        return [Request("sqs:CreateQueue", _queue_arn(facts, p["QueueName"]))]
    if op == "GetQueueUrl":
        return [Request("sqs:GetQueueUrl", _queue_arn(facts, p["QueueName"]))]
    if op == "ListQueues":
        return [Request("sqs:ListQueues", "*")]
    if "QueueUrl" in p:
        return [Request(f"sqs:{batch.get(op, op)}", _queue_arn(facts, p["QueueUrl"]))]
    raise UnmappedCall(op)


def _sns(call: Call, facts: TemplateFacts) -> list[Request]:
    p, op = call.params, call.operation
    if op in ("Publish", "PublishBatch"):
        topic = p["TopicArn"]
        requests = [Request("sns:Publish", topic)]
        # A topic encrypted with a customer-managed key: the publisher must be able to use the key.
        if topic in facts.topic_keys:
            key = facts.topic_keys[topic]
            requests += [Request("kms:GenerateDataKey", key), Request("kms:Decrypt", key)]
        return requests
    if op == "Subscribe":
        return [Request("sns:Subscribe", p["TopicArn"])]
    if op == "Unsubscribe":
        # The subscription ARN is the topic ARN plus an ID; IAM checks the topic.
        return [Request("sns:Unsubscribe", p["SubscriptionArn"].rsplit(":", 1)[0])]
    raise UnmappedCall(op)


def _kms(call: Call, facts: TemplateFacts) -> list[Request]:
    p, op = call.params, call.operation
    if op not in ("Sign", "Verify", "GetPublicKey", "DescribeKey", "GenerateDataKey", "Decrypt", "Encrypt"):
        raise UnmappedCall(op)
    key_id = str(p["KeyId"])
    alias = key_id.split(":", 5)[-1] if key_id.startswith("arn:") else key_id
    if alias not in facts.key_by_alias:
        raise UnmappedCall(f"{op} on {key_id}: not a key alias of the template")
    return [Request(f"kms:{op}", facts.key_by_alias[alias])]


def _alarm_arns(facts: TemplateFacts, p: dict[str, Any]) -> list[str]:
    base = f"arn:aws:cloudwatch:{facts.region}:{facts.account}:alarm:"
    if p.get("AlarmNames"):
        return [base + name for name in p["AlarmNames"]]
    if p.get("AlarmName"):
        return [base + p["AlarmName"]]
    return [base + p.get("AlarmNamePrefix", "") + "*"]


def _cloudwatch(call: Call, facts: TemplateFacts) -> list[Request]:
    p, op = call.params, call.operation
    if op == "PutMetricData":
        return [Request("cloudwatch:PutMetricData", "*", {"cloudwatch:namespace": p["Namespace"]})]
    if op in ("GetMetricData", "GetMetricStatistics", "ListMetrics"):
        return [Request(f"cloudwatch:{op}", "*")]
    if op in ("DescribeAlarms", "DescribeAlarmHistory"):
        return [Request(f"cloudwatch:{op}", arn) for arn in _alarm_arns(facts, p)]
    raise UnmappedCall(op)


def _logs(call: Call, facts: TemplateFacts) -> list[Request]:
    p, op = call.params, call.operation
    if op in ("CreateLogStream", "PutLogEvents"):
        group = f"arn:aws:logs:{facts.region}:{facts.account}:log-group:{p['logGroupName']}"
        return [Request(f"logs:{op}", f"{group}:log-stream:{p['logStreamName']}")]
    raise UnmappedCall(op)


def _sts(call: Call, facts: TemplateFacts) -> list[Request]:
    if call.operation == "GetCallerIdentity":
        return []  # needs no permission
    raise UnmappedCall(call.operation)


_MAPPERS: dict[str, Callable[[Call, TemplateFacts], list[Request]]] = {
    "s3": _s3,
    "dynamodb": _dynamodb,
    "sqs": _sqs,
    "sns": _sns,
    "kms": _kms,
    "cloudwatch": _cloudwatch,
    "logs": _logs,
    "sts": _sts,
}


def authorisations(call: Call, facts: TemplateFacts) -> list[Request]:
    """Every IAM request ``call`` needs to succeed; raises :class:`UnmappedCall` for unknown ones."""
    mapper = _MAPPERS.get(call.service)
    if mapper is None:
        raise UnmappedCall(f"{call.service}:{call.operation}")
    try:
        return mapper(call, facts)
    except UnmappedCall as exc:
        raise UnmappedCall(f"{call.service}:{call.operation} ({exc})") from None
