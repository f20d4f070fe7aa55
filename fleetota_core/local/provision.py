"""Creates the local stack's resources with boto3 calls, from the values in the template.

moto's CloudFormation drops S3 notifications, queue policies and alarms, so the local stack is
provisioned call by call. Every step is idempotent: attaching to a running endpoint provisions again.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fleetota_core.adapters.clients import ClientFactory
    from fleetota_core.local.stack_spec import BucketSpec, StackSpec

logger = logging.getLogger(__name__)


def provision(spec: StackSpec, clients: ClientFactory) -> None:
    """Create whatever of ``spec`` is missing on the endpoint; existing resources are kept."""
    for arn in spec.topics.values():
        clients.sns.create_topic(Name=arn.rsplit(":", 1)[-1])
    _provision_queues(spec, clients)
    new_buckets = _provision_buckets(spec, clients)
    _provision_tables(spec, clients)
    _provision_keys(spec, clients)
    for schedule in spec.schedules:
        clients.events.put_rule(
            Name=schedule.name,
            ScheduleExpression=schedule.expression,
            State="ENABLED" if schedule.enabled else "DISABLED",
        )
    _provision_alarms(spec, clients)
    for name, body in spec.dashboards.items():
        clients.cloudwatch.put_dashboard(DashboardName=name, DashboardBody=body)
    _drop_s3_test_events(spec, new_buckets, clients)


def _provision_alarms(spec: StackSpec, clients: ClientFactory) -> None:
    names = [a["AlarmName"] for a in spec.alarms]
    described = clients.cloudwatch.describe_alarms(AlarmNames=names).get("MetricAlarms", [])
    states = {a["AlarmName"]: a["StateValue"] for a in described}
    for alarm in spec.alarms:
        if "Metrics" in alarm or "ExtendedStatistic" in alarm:
            # moto has no metric math and no percentiles; the local evaluator skips these too.
            logger.warning(
                "skipping alarm %s: the local stack supports simple statistics only", alarm["AlarmName"]
            )
            continue
        clients.cloudwatch.put_metric_alarm(**alarm)
        # moto (re)creates alarms in OK; AWS starts them in INSUFFICIENT_DATA and keeps the state on update.
        existed = alarm["AlarmName"] in states
        clients.cloudwatch.set_alarm_state(
            AlarmName=alarm["AlarmName"],
            StateValue=states.get(alarm["AlarmName"], "INSUFFICIENT_DATA"),
            StateReason="Configuration updated from the template"
            if existed
            else "Unchecked: Initial alarm creation",
        )


def _provision_queues(spec: StackSpec, clients: ClientFactory) -> None:
    # Dead-letter queues first: a redrive policy may only name an existing queue.
    for queue in sorted(spec.queues, key=lambda q: "RedrivePolicy" in q.attributes):
        clients.sqs.create_queue(QueueName=queue.name, Attributes=queue.attributes)
        # create_queue keeps an existing queue's attributes; make them match the template again.
        clients.sqs.set_queue_attributes(QueueUrl=queue.url, Attributes=queue.attributes)


def _provision_buckets(spec: StackSpec, clients: ClientFactory) -> list[BucketSpec]:
    existing = {b["Name"] for b in clients.s3.list_buckets().get("Buckets", [])}
    created = []
    for bucket in spec.buckets:
        if bucket.name not in existing:
            kwargs: dict[str, Any] = {"Bucket": bucket.name}
            if spec.region != "us-east-1":
                kwargs["CreateBucketConfiguration"] = {"LocationConstraint": spec.region}
            clients.s3.create_bucket(**kwargs)
            created.append(bucket)
        if bucket.versioned:
            clients.s3.put_bucket_versioning(
                Bucket=bucket.name, VersioningConfiguration={"Status": "Enabled"}
            )
        if bucket.notifications:
            clients.s3.put_bucket_notification_configuration(
                Bucket=bucket.name,
                NotificationConfiguration={
                    "QueueConfigurations": [
                        {
                            "QueueArn": n.queue_arn,
                            "Events": n.events,
                            **(
                                {"Filter": {"Key": {"FilterRules": n.filter_rules}}} if n.filter_rules else {}
                            ),
                        }
                        for n in bucket.notifications
                    ]
                },
            )
    return created


def _provision_tables(spec: StackSpec, clients: ClientFactory) -> None:
    existing = set(clients.dynamodb.list_tables().get("TableNames", []))
    for table in spec.tables:
        if table.name in existing:
            continue
        kwargs: dict[str, Any] = {
            "TableName": table.name,
            "BillingMode": "PAY_PER_REQUEST",
            "KeySchema": table.key_schema,
            "AttributeDefinitions": table.attribute_definitions,
        }
        if table.global_secondary_indexes:
            kwargs["GlobalSecondaryIndexes"] = table.global_secondary_indexes
        clients.dynamodb.create_table(**kwargs)
        if table.ttl_attribute:
            clients.dynamodb.update_time_to_live(
                TableName=table.name,
                TimeToLiveSpecification={"Enabled": True, "AttributeName": table.ttl_attribute},
            )


def _provision_keys(spec: StackSpec, clients: ClientFactory) -> None:
    existing = {a["AliasName"] for a in clients.kms.list_aliases().get("Aliases", [])}
    for alias, key in spec.signing_keys.items():
        if alias in existing:
            continue
        key_id = clients.kms.create_key(**key)["KeyMetadata"]["KeyId"]
        clients.kms.create_alias(AliasName=alias, TargetKeyId=key_id)


def _drop_s3_test_events(spec: StackSpec, new_buckets: list[BucketSpec], clients: ClientFactory) -> None:
    # S3 sends an "s3:TestEvent" when a notification is configured; a fresh local stack starts empty.
    for bucket in new_buckets:
        for notification in bucket.notifications:
            url = spec.queue(notification.queue_arn).url
            for message in clients.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get(
                "Messages", []
            ):
                if '"s3:TestEvent"' in message["Body"]:
                    clients.sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
                else:
                    clients.sqs.change_message_visibility(
                        QueueUrl=url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
                    )


def missing_resources(spec: StackSpec, clients: ClientFactory) -> list[str]:
    """Names of the spec's resources the endpoint lacks (empty when fully provisioned)."""
    missing: list[str] = []
    buckets = {b["Name"] for b in clients.s3.list_buckets().get("Buckets", [])}
    missing += [b.name for b in spec.buckets if b.name not in buckets]
    tables = set(clients.dynamodb.list_tables().get("TableNames", []))
    missing += [t.name for t in spec.tables if t.name not in tables]
    queues = set(clients.sqs.list_queues(QueueNamePrefix=spec.stack).get("QueueUrls", []))
    queue_names = {url.rsplit("/", 1)[-1] for url in queues}
    missing += [q.name for q in spec.queues if q.name not in queue_names]
    topics = {t["TopicArn"] for t in clients.sns.list_topics().get("Topics", [])}
    missing += [arn for arn in spec.topics.values() if arn not in topics]
    aliases = {a["AliasName"] for a in clients.kms.list_aliases().get("Aliases", [])}
    missing += [alias for alias in spec.signing_keys if alias not in aliases]
    return missing
