"""The IAM policy evaluator and request mapping behind tests/integration/test_least_privilege.py."""

from __future__ import annotations

import pytest

from fleetota_core.infra_template import load_template
from fleetota_core.settings import Settings
from tests.iam.policy import PolicyError, Request, Statement, evaluate
from tests.iam.principals import role_statements, template_facts, without_statement
from tests.iam.requests import MISSING_KEY, Call, UnmappedCall, authorisations

BUCKET = "arn:aws:s3:::fleet-firmware"


def allow(sid: str, action, resource, **extra) -> Statement:
    return Statement.parse({"Sid": sid, "Effect": "Allow", "Action": action, "Resource": resource, **extra})


def test_an_allow_on_the_prefix_allows_a_key_under_it_and_nothing_beside_it():
    statements = [allow("Jobs", "s3:PutObject", f"{BUCKET}/jobs/*")]

    assert evaluate(statements, Request("s3:PutObject", f"{BUCKET}/jobs/VIN/d.json")).allowed
    outside = evaluate(statements, Request("s3:PutObject", f"{BUCKET}/releases/1.0.json"))
    assert not outside.allowed and outside.reason == "no statement allows it"
    # "jobs*" is not "jobs/*": a sibling prefix that merely starts the same is not under it.
    assert not evaluate(statements, Request("s3:PutObject", f"{BUCKET}/jobsX/a")).allowed
    assert not evaluate(statements, Request("s3:GetObject", f"{BUCKET}/jobs/VIN/d.json")).allowed


def test_an_explicit_deny_beats_any_allow():
    statements = [
        allow("Everything", "s3:*", "*"),
        Statement.parse(
            {"Sid": "NoReleases", "Effect": "Deny", "Action": "s3:Put*", "Resource": f"{BUCKET}/releases/*"}
        ),
    ]

    decision = evaluate(statements, Request("s3:PutObject", f"{BUCKET}/releases/1.0.json"))
    assert not decision.allowed and decision.reason == "denied by NoReleases"
    assert evaluate(statements, Request("s3:PutObject", f"{BUCKET}/firmware/1.0/a.bin")).allowed


def test_actions_match_case_insensitively_with_wildcards_and_not_action_inverts():
    statements = [allow("Reads", ["dynamodb:Get*", "dynamodb:Query"], "*")]
    assert evaluate(statements, Request("DynamoDB:GetItem", "arn:t")).allowed
    assert evaluate(statements, Request("dynamodb:BatchGetItem", "arn:t")).allowed is False
    not_iam = Statement.parse({"Sid": "NotIam", "Effect": "Allow", "NotAction": "iam:*", "Resource": "*"})
    assert evaluate([not_iam], Request("sqs:ReceiveMessage", "arn:q")).allowed
    assert not evaluate([not_iam], Request("iam:PassRole", "arn:r")).allowed


def test_a_principal_tag_confines_a_vehicle_to_its_own_job_documents():
    statements = [allow("OwnJobs", "s3:GetObject", f"{BUCKET}/jobs/${{aws:PrincipalTag/vin}}/*")]
    own = Request("s3:GetObject", f"{BUCKET}/jobs/WVWZZZ1JZXW000001/d.json")
    other = Request("s3:GetObject", f"{BUCKET}/jobs/5YJ3E1EA7KF000002/d.json")

    assert evaluate(statements, own, {"vin": "WVWZZZ1JZXW000001"}).allowed
    assert not evaluate(statements, other, {"vin": "WVWZZZ1JZXW000001"}).allowed
    # No tag: the variable has no value and the statement matches nothing.
    assert not evaluate(statements, own, {}).allowed
    # A tag value is data, not a pattern: "*" in it does not open every vehicle's folder.
    assert not evaluate(statements, own, {"vin": "*"}).allowed
    with pytest.raises(PolicyError, match="aws:username"):
        evaluate([allow("Home", "s3:GetObject", f"{BUCKET}/home/${{aws:username}}/*")], own)


def test_conditions_on_request_keys_are_evaluated_and_unknown_operators_are_refused():
    statements = [
        allow(
            "Metrics", "cloudwatch:PutMetricData", "*",
            Condition={"StringEquals": {"cloudwatch:namespace": ["FleetHealth", "OTAUpdates"]}},
        )
    ]  # fmt: skip
    ok = Request("cloudwatch:PutMetricData", "*", {"cloudwatch:namespace": "FleetHealth"})
    assert evaluate(statements, ok).allowed
    assert not evaluate(
        statements, Request("cloudwatch:PutMetricData", "*", {"cloudwatch:namespace": "AWS/EC2"})
    ).allowed
    assert not evaluate(statements, Request("cloudwatch:PutMetricData", "*")).allowed  # key absent
    with pytest.raises(PolicyError, match="DateGreaterThan"):
        allow("Odd", "s3:*", "*", Condition={"DateGreaterThan": {"aws:CurrentTime": "2030-01-01"}})


def test_a_statement_without_a_sid_or_with_an_unknown_element_is_refused():
    with pytest.raises(PolicyError, match="Principal"):
        Statement.parse({"Effect": "Allow", "Action": "s3:*", "Resource": "*", "Principal": "*"})
    with pytest.raises(PolicyError, match="Effect"):
        Statement.parse({"Effect": "allow", "Action": "s3:*", "Resource": "*"})


@pytest.fixture
def facts():
    return template_facts(Settings(mode="local", local_port=4566))


def test_boto3_operations_map_to_their_iam_action_and_resource_arn(facts):
    def requests(service, operation, **params):
        return [(r.action, r.resource) for r in authorisations(Call("R", service, operation, params), facts)]

    table = "arn:aws:dynamodb:us-east-1:123456789012:table/fleetota-local-deployments"
    assert requests("s3", "ListObjectsV2", Bucket="b", Prefix="releases/") == [
        ("s3:ListBucket", "arn:aws:s3:::b")
    ]
    assert requests("s3", "HeadObject", Bucket="b", Key="k/1") == [("s3:GetObject", "arn:aws:s3:::b/k/1")]
    # The same read finding no object: only s3:ListBucket turns S3's 403 into the 404 the code expects.
    missing = Call("R", "s3", "GetObject", {"Bucket": "b", "Key": "k/1"}, how=MISSING_KEY)
    assert [(r.action, r.resource) for r in authorisations(missing, facts)] == [
        ("s3:ListBucket", "arn:aws:s3:::b")
    ]
    assert requests("s3", "DeleteObjects", Bucket="b", Delete={"Objects": [{"Key": "x"}]}) == [
        ("s3:DeleteObject", "arn:aws:s3:::b/x")
    ]
    assert requests("dynamodb", "Query", TableName="fleetota-local-deployments", IndexName="by_vin") == [
        ("dynamodb:Query", f"{table}/index/by_vin")
    ]
    check = {"ConditionCheck": {"TableName": "fleetota-local-deployments"}}
    assert requests("dynamodb", "TransactWriteItems", TransactItems=[check]) == [
        ("dynamodb:ConditionCheckItem", table)
    ]
    assert requests("sqs", "DeleteMessageBatch", QueueUrl="http://h/123456789012/q", Entries=[]) == [
        ("sqs:DeleteMessage", "arn:aws:sqs:us-east-1:123456789012:q")
    ]
    assert requests("kms", "Sign", KeyId="alias/fleetota-local-director") == [
        ("kms:Sign", "arn:aws:kms:us-east-1:123456789012:key/DirectorKey")
    ]
    # The alerts topic is encrypted with a customer-managed key: publishing needs the key too.
    alerts = "arn:aws:sns:us-east-1:123456789012:fleetota-local-alerts"
    assert [a for a, _ in requests("sns", "Publish", TopicArn=alerts)] == [
        "sns:Publish",
        "kms:GenerateDataKey",
        "kms:Decrypt",
    ]


def test_an_operation_without_a_mapping_fails_instead_of_passing(facts):
    with pytest.raises(UnmappedCall, match="s3:PutBucketPolicy"):
        authorisations(Call("R", "s3", "PutBucketPolicy", {"Bucket": "b"}), facts)
    with pytest.raises(UnmappedCall, match="lambda:Invoke"):
        authorisations(Call("R", "lambda", "Invoke", {}), facts)
    with pytest.raises(UnmappedCall, match="not a key alias"):
        authorisations(Call("R", "kms", "Sign", {"KeyId": "1234abcd-12ab-34cd-56ef-1234567890ab"}), facts)


def test_the_templates_roles_resolve_to_local_arns_and_a_removed_statement_is_gone(facts):
    processor = facts.principals["TelemetryProcessorRole"]
    catalogue = Request("s3:GetObject", "arn:aws:s3:::fleetota-local-firmware/releases/3.5.0.json")
    assert evaluate(processor.statements, catalogue).allowed

    template = without_statement(load_template(), "TelemetryProcessorRole", "ReadReleaseCatalogue")
    trimmed = template_facts(Settings(mode="local", local_port=4566), template).principals[
        "TelemetryProcessorRole"
    ]
    assert not evaluate(trimmed.statements, catalogue).allowed
    assert len(trimmed.statements) == len(processor.statements) - 1


def test_every_statement_of_every_role_has_a_sid_so_a_failure_can_name_it():
    for role, statements in role_statements(load_template()).items():
        sids = [statement.get("Sid") for _, statement in statements]
        assert all(sids) and len(set(sids)) == len(sids), (role, sids)
