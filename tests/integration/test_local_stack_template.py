"""The provisioned local stack agrees with infra/template.yaml, read here straight from the YAML.

These tests read the raw template (not the local stack's own reading of it), so a provisioning bug
and a template change that provisioning ignores both fail here.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import pytest

from fleetota_core.infra_template import load_template, resources_of_type
from fleetota_core.local.template_resolver import LOGICAL_TO_FIELD

if TYPE_CHECKING:
    from tests.integration.conftest import LocalStack

TEMPLATE = load_template()


def _name(stack: LocalStack, logical_id: str) -> str:
    value = stack.resources.as_dict()[LOGICAL_TO_FIELD[logical_id]]
    return value.rsplit("/", 1)[-1] if value.startswith("http") else value.rsplit(":", 1)[-1]


def _sub_stack_name(stack: LocalStack, value: Any) -> str:
    return value["Fn::Sub"].replace("${AWS::StackName}", stack.spec.stack)


def _sorted(items: list[dict[str, Any]], key: str) -> list[dict[str, Any]]:
    return sorted(items, key=lambda item: item[key])


@pytest.mark.parametrize("logical_id", sorted(resources_of_type(TEMPLATE, "AWS::DynamoDB::Table")))
def test_each_table_has_the_template_keys_indexes_and_ttl(stack: LocalStack, logical_id: str):
    props = TEMPLATE["Resources"][logical_id]["Properties"]
    name = _name(stack, logical_id)
    table = stack.clients.dynamodb.describe_table(TableName=name)["Table"]
    assert table["KeySchema"] == props["KeySchema"]
    assert _sorted(table["AttributeDefinitions"], "AttributeName") == _sorted(
        props["AttributeDefinitions"], "AttributeName"
    )
    local_indexes = {
        i["IndexName"]: (i["KeySchema"], i["Projection"]["ProjectionType"])
        for i in table.get("GlobalSecondaryIndexes", [])
    }
    template_indexes = {
        i["IndexName"]: (i["KeySchema"], i["Projection"]["ProjectionType"])
        for i in props.get("GlobalSecondaryIndexes", [])
    }
    assert local_indexes == template_indexes
    ttl = stack.clients.dynamodb.describe_time_to_live(TableName=name)["TimeToLiveDescription"]
    if props.get("TimeToLiveSpecification", {}).get("Enabled"):
        assert ttl["TimeToLiveStatus"] == "ENABLED"
        assert ttl["AttributeName"] == props["TimeToLiveSpecification"]["AttributeName"]
    else:
        assert ttl["TimeToLiveStatus"] == "DISABLED"


@pytest.mark.parametrize("logical_id", sorted(resources_of_type(TEMPLATE, "AWS::SQS::Queue")))
def test_each_queue_has_the_template_attributes_and_redrive_policy(stack: LocalStack, logical_id: str):
    props = TEMPLATE["Resources"][logical_id]["Properties"]
    url = stack.resources.as_dict()[LOGICAL_TO_FIELD[logical_id]]
    attributes = stack.clients.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    for name in (
        "VisibilityTimeout",
        "MessageRetentionPeriod",
        "DelaySeconds",
        "ReceiveMessageWaitTimeSeconds",
    ):
        if name in props:
            assert attributes[name] == str(props[name]), name
    if "RedrivePolicy" in props:
        policy = json.loads(attributes["RedrivePolicy"])
        assert int(policy["maxReceiveCount"]) == props["RedrivePolicy"]["maxReceiveCount"]
        dlq_logical_id = props["RedrivePolicy"]["deadLetterTargetArn"]["Fn::GetAtt"][0]
        assert policy["deadLetterTargetArn"].endswith(f":{_name(stack, dlq_logical_id)}")
    else:
        assert "RedrivePolicy" not in attributes


@pytest.mark.parametrize("logical_id", sorted(resources_of_type(TEMPLATE, "AWS::S3::Bucket")))
def test_each_bucket_has_the_template_notifications_and_versioning(stack: LocalStack, logical_id: str):
    props = TEMPLATE["Resources"][logical_id]["Properties"]
    bucket = _name(stack, logical_id)
    config = stack.clients.s3.get_bucket_notification_configuration(Bucket=bucket)
    expected = [
        (
            _name(stack, q["Queue"]["Fn::GetAtt"][0]),
            [q["Event"]],
            sorted((r["Name"], r["Value"]) for r in q.get("Filter", {}).get("S3Key", {}).get("Rules", [])),
        )
        for q in props.get("NotificationConfiguration", {}).get("QueueConfigurations", [])
    ]
    actual = [
        (
            q["QueueArn"].rsplit(":", 1)[-1],
            q["Events"],
            sorted(
                (r["Name"], r["Value"]) for r in q.get("Filter", {}).get("Key", {}).get("FilterRules", [])
            ),
        )
        for q in config.get("QueueConfigurations", [])
    ]
    assert actual == expected
    versioning = stack.clients.s3.get_bucket_versioning(Bucket=bucket).get("Status")
    assert versioning == props.get("VersioningConfiguration", {}).get("Status")


@pytest.mark.parametrize("logical_id", sorted(resources_of_type(TEMPLATE, "AWS::CloudWatch::Alarm")))
def test_each_alarm_has_the_template_metric_threshold_and_actions(stack: LocalStack, logical_id: str):
    props = TEMPLATE["Resources"][logical_id]["Properties"]
    name = _sub_stack_name(stack, props["AlarmName"])
    (alarm,) = stack.clients.cloudwatch.describe_alarms(AlarmNames=[name])["MetricAlarms"]
    for key in ("Namespace", "MetricName", "Statistic", "Period", "EvaluationPeriods", "ComparisonOperator"):
        assert alarm[key] == props[key], key
    assert alarm["Threshold"] == float(props["Threshold"])
    assert alarm.get("TreatMissingData", "missing") == props.get("TreatMissingData", "missing")
    assert [d["Name"] for d in alarm["Dimensions"]] == [d["Name"] for d in props.get("Dimensions", [])]
    local_names = {_name(stack, lid) for lid in LOGICAL_TO_FIELD}
    assert all(d["Value"] in local_names for d in alarm["Dimensions"])
    assert len(alarm["AlarmActions"]) == len(props.get("AlarmActions", []))
    assert all(arn == stack.resources.alerts_topic_arn for arn in alarm["AlarmActions"] + alarm["OKActions"])


@pytest.mark.parametrize("logical_id", sorted(resources_of_type(TEMPLATE, "AWS::Events::Rule")))
def test_each_schedule_rule_has_the_template_expression(stack: LocalStack, logical_id: str):
    props = TEMPLATE["Resources"][logical_id]["Properties"]
    rule = stack.clients.events.describe_rule(Name=_sub_stack_name(stack, props["Name"]))
    assert rule["ScheduleExpression"] == props["ScheduleExpression"]
    assert rule["State"] == props.get("State", "ENABLED")


@pytest.mark.parametrize(
    "logical_id, field", [("ImageKey", "image_key_alias"), ("DirectorKey", "director_key_alias")]
)
def test_each_signing_key_has_the_template_key_spec_and_usage(stack: LocalStack, logical_id: str, field: str):
    props = TEMPLATE["Resources"][logical_id]["Properties"]
    key = stack.clients.kms.describe_key(KeyId=stack.resources.as_dict()[field])["KeyMetadata"]
    assert (key["KeySpec"], key["KeyUsage"]) == (props["KeySpec"], props["KeyUsage"])


def test_the_image_and_director_keys_are_two_keys(stack: LocalStack):
    image = stack.clients.kms.describe_key(KeyId=stack.resources.image_key_alias)["KeyMetadata"]["KeyId"]
    director = stack.clients.kms.describe_key(KeyId=stack.resources.director_key_alias)["KeyMetadata"][
        "KeyId"
    ]
    assert image != director


def test_every_template_resource_that_moto_can_hold_is_provisioned(stack: LocalStack):
    topics = {t["TopicArn"] for t in stack.clients.sns.list_topics()["Topics"]}
    for logical_id in resources_of_type(TEMPLATE, "AWS::SNS::Topic"):
        assert stack.resources.as_dict()[LOGICAL_TO_FIELD[logical_id]] in topics
    tables = set(stack.clients.dynamodb.list_tables()["TableNames"])
    assert {_name(stack, lid) for lid in resources_of_type(TEMPLATE, "AWS::DynamoDB::Table")} <= tables
