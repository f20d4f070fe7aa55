"""infra/template.yaml honours docs/resources.md and the security and operations rules of the issue."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from fleetota_core.errors import ConfigurationError
from fleetota_core.infra_template import (
    DEFAULT_TEMPLATE_PATH,
    load_template,
    parse_template,
    resources_of_type,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
RESOURCES_MD = REPO_ROOT / "docs" / "resources.md"
STACK = "${AWS::StackName}"
CUSTOM_NAMESPACES = ["FleetHealth", "OTAUpdates", "Telemetry"]
ROOT_PRINCIPAL = {"AWS": {"Fn::Sub": "arn:${AWS::Partition}:iam::${AWS::AccountId}:root"}}
# cfn-lint has no `python -m` entry point; this is what its console script runs.
CFN_LINT = "import sys; from cfnlint.runner import main; sys.exit(main())"


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return load_template()


@pytest.fixture(scope="module")
def resources(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return template["Resources"]


def _contract_rows() -> list[dict[str, str]]:
    """The resource table of docs/resources.md, one dict per row, backticks stripped."""
    text = RESOURCES_MD.read_text(encoding="utf-8")
    # Only the first table is the resource contract; later tables document additions.
    first_table = re.search(r"(?m)(^\|.*\n)+", text)
    assert first_table, "docs/resources.md has no table"
    lines = first_table.group(0).splitlines()
    header = [cell.strip().replace("`", "") for cell in lines[0].strip("|").split("|")]
    rows = []
    for line in lines[2:]:
        cells = [cell.strip().replace("`", "") for cell in line.strip("|").split("|")]
        if len(cells) == len(header):
            rows.append(dict(zip(header, cells, strict=True)))
    return rows


CONTRACT = _contract_rows()
CONTRACT_OUTPUT_KEYS = [row["output key"] for row in CONTRACT if row["output key"] not in ("—", "-", "")]
# "(runtime only)" rows have no Resources field.
CONTRACT_FIELDS = [
    row["Resources field"] for row in CONTRACT if re.fullmatch(r"[a-z_]+", row["Resources field"])
]


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _iam_statements(resources: dict[str, dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    """Every permission statement of every role and standalone policy, with its owner's logical ID."""
    found = []
    for logical_id, resource in resources.items():
        props = resource.get("Properties", {})
        if resource["Type"] == "AWS::IAM::Role":
            documents = [policy["PolicyDocument"] for policy in props.get("Policies", [])]
        elif resource["Type"] in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
            documents = [props["PolicyDocument"]]
        else:
            continue
        found += [(logical_id, statement) for doc in documents for statement in doc["Statement"]]
    return found


def _name_of(value: Any) -> str:
    """A name property as the text it resolves to, with ``Ref AWS::StackName`` as ``${AWS::StackName}``."""
    if isinstance(value, dict) and value.get("Ref") == "AWS::StackName":
        return STACK
    if isinstance(value, dict) and "Fn::Sub" in value:
        return value["Fn::Sub"]
    return value


# ---------------------------------------------------------------- lint and loader


def test_cfn_lint_reports_nothing_for_the_template() -> None:
    # Runs the cfn-lint installed beside this interpreter, whatever venv that is.
    result = subprocess.run(
        [sys.executable, "-c", CFN_LINT, str(DEFAULT_TEMPLATE_PATH)],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert result.stdout + result.stderr == ""
    assert result.returncode == 0


def test_loader_turns_short_tags_into_long_form() -> None:
    text = """
    a: !Ref Thing
    b: !GetAtt Queue.Arn
    c: !GetAtt [Queue, QueueName]
    d: !Sub "${AWS::StackName}-x"
    e: !Join [",", [!Ref A, !Ref B]]
    f: !If [HasEmail, !Ref Email, !Ref AWS::NoValue]
    g: !Condition HasEmail
    h: !GetAtt Db.Endpoint.Address
    version: 2010-09-09
    """
    parsed = parse_template(textwrap.dedent(text))
    assert parsed == {
        "a": {"Ref": "Thing"},
        "b": {"Fn::GetAtt": ["Queue", "Arn"]},
        "c": {"Fn::GetAtt": ["Queue", "QueueName"]},
        "d": {"Fn::Sub": "${AWS::StackName}-x"},
        "e": {"Fn::Join": [",", [{"Ref": "A"}, {"Ref": "B"}]]},
        "f": {"Fn::If": ["HasEmail", {"Ref": "Email"}, {"Ref": "AWS::NoValue"}]},
        "g": {"Condition": "HasEmail"},
        "h": {"Fn::GetAtt": ["Db", "Endpoint.Address"]},
        "version": "2010-09-09",
    }


def test_loader_rejects_a_template_that_is_not_a_mapping() -> None:
    with pytest.raises(ConfigurationError):
        parse_template("- just\n- a list\n")


def test_loading_a_missing_template_names_the_path(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match=r"nowhere\.yaml"):
        load_template(tmp_path / "nowhere.yaml")


# ---------------------------------------------------------------- the resources.md contract


def test_contract_table_is_parsed() -> None:
    # Guards the tests below against silently checking an empty contract.
    assert "TelemetryBucketName" in CONTRACT_OUTPUT_KEYS
    assert "telemetry_bucket" in CONTRACT_FIELDS
    assert len(CONTRACT_FIELDS) == 17


def test_every_contract_output_exists_with_a_stack_scoped_export(template: dict[str, Any]) -> None:
    outputs = template["Outputs"]
    for key in CONTRACT_OUTPUT_KEYS:
        assert key in outputs, f"output {key} from docs/resources.md is missing"
        assert outputs[key]["Export"]["Name"] == {"Fn::Sub": f"{STACK}-{key}"}


def test_every_output_is_documented_in_the_contract(template: dict[str, Any]) -> None:
    text = RESOURCES_MD.read_text(encoding="utf-8")
    for key in template["Outputs"]:
        assert key in text, f"output {key} is not in docs/resources.md"


def test_every_contract_logical_id_exists(resources: dict[str, dict[str, Any]]) -> None:
    for row in CONTRACT:
        for logical_id in re.findall(r"[A-Z][A-Za-z]+", row["logical ID"]):
            if logical_id == "Alarms":
                continue
            assert logical_id in resources, f"{logical_id} from docs/resources.md is missing"


@pytest.mark.parametrize(
    ("logical_id", "name_property"),
    [
        ("TelemetryQueue", "QueueName"),
        ("TelemetryDLQ", "QueueName"),
        ("VehiclesTable", "TableName"),
        ("CampaignsTable", "TableName"),
        ("DeploymentsTable", "TableName"),
        ("AuditTable", "TableName"),
        ("LedgerTable", "TableName"),
        ("AlertsTopic", "TopicName"),
        ("JobNotificationsTopic", "TopicName"),
        ("TelemetryProcessorFunction", "FunctionName"),
        ("UpdateManagerFunction", "FunctionName"),
        ("UpdateManagerSchedule", "Name"),
        ("Dashboard", "DashboardName"),
    ],
)
def test_physical_names_match_the_local_names_in_the_contract(
    resources: dict[str, dict[str, Any]], logical_id: str, name_property: str
) -> None:
    row = next(row for row in CONTRACT if row["logical ID"] == logical_id)
    local_name = re.search(r"\{stack\}[\w-]*", row["local physical name"])
    assert local_name is not None
    expected = local_name.group(0).replace("{stack}", STACK)
    assert _name_of(resources[logical_id]["Properties"][name_property]) == expected


def test_key_aliases_match_the_contract(resources: dict[str, dict[str, Any]]) -> None:
    assert resources["ImageKeyAlias"]["Properties"]["AliasName"] == {"Fn::Sub": f"alias/{STACK}-image"}
    assert resources["DirectorKeyAlias"]["Properties"]["AliasName"] == {"Fn::Sub": f"alias/{STACK}-director"}


def test_bucket_names_are_stack_and_account_scoped(resources: dict[str, dict[str, Any]]) -> None:
    for logical_id, suffix in (("TelemetryBucket", "telemetry"), ("FirmwareBucket", "firmware")):
        name = resources[logical_id]["Properties"]["BucketName"]
        assert name == {"Fn::Sub": f"{STACK}-{suffix}-${{AWS::AccountId}}"}


def test_lambda_handlers_match_the_contract(resources: dict[str, dict[str, Any]]) -> None:
    for row in CONTRACT:
        handler = re.search(r"handler (\S+)", row["type"])
        if handler:
            assert resources[row["logical ID"]]["Properties"]["Handler"] == handler.group(1)


# ---------------------------------------------------------------- DynamoDB


def _keys(key_schema: list[dict[str, str]]) -> tuple[str, ...]:
    order = {"HASH": 0, "RANGE": 1}
    return tuple(k["AttributeName"] for k in sorted(key_schema, key=lambda k: order[k["KeyType"]]))


@pytest.mark.parametrize(
    ("logical_id", "keys", "ttl"),
    [
        ("VehiclesTable", ("vin",), None),
        ("CampaignsTable", ("campaign_id",), None),
        ("DeploymentsTable", ("campaign_id", "vin"), None),
        ("AuditTable", ("entity_id", "event_ts"), "expires_at"),
        ("LedgerTable", ("pk", "sk"), "expires_at"),
    ],
)
def test_tables_have_contract_keys_on_demand_billing_pitr_and_encryption(
    resources: dict[str, dict[str, Any]], logical_id: str, keys: tuple[str, ...], ttl: str | None
) -> None:
    props = resources[logical_id]["Properties"]
    assert _keys(props["KeySchema"]) == keys
    assert props["BillingMode"] == "PAY_PER_REQUEST"
    assert props["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert props["SSESpecification"]["SSEEnabled"] is True
    if ttl:
        assert props["TimeToLiveSpecification"] == {"AttributeName": ttl, "Enabled": True}
    else:
        assert "TimeToLiveSpecification" not in props


def test_deployments_table_has_the_by_vin_and_by_status_indexes(resources: dict[str, dict[str, Any]]) -> None:
    indexes = resources["DeploymentsTable"]["Properties"]["GlobalSecondaryIndexes"]
    assert {index["IndexName"]: _keys(index["KeySchema"]) for index in indexes} == {
        "by_vin": ("vin", "campaign_id"),
        "by_status": ("campaign_status", "next_action_at"),
    }


def test_every_key_attribute_is_a_string(resources: dict[str, dict[str, Any]]) -> None:
    for logical_id, table in resources_of_type({"Resources": resources}, "AWS::DynamoDB::Table").items():
        for attribute in table["Properties"]["AttributeDefinitions"]:
            assert attribute["AttributeType"] == "S", f"{logical_id}.{attribute['AttributeName']}"


# ---------------------------------------------------------------- IAM and KMS


def test_no_iam_statement_grants_a_wildcard_action(resources: dict[str, dict[str, Any]]) -> None:
    statements = _iam_statements(resources)
    assert len(statements) > 10
    for owner, statement in statements:
        assert "NotAction" not in statement, owner
        for action in _as_list(statement["Action"]):
            assert "*" not in action, f"{owner} {statement.get('Sid')}: {action}"


# Actions IAM cannot scope to a resource: reading metrics (the operator) and publishing them (the
# functions, scoped by a namespace condition instead).
UNSCOPED_READS = {"cloudwatch:GetMetricData", "cloudwatch:ListMetrics"}


def test_iam_resources_are_scoped_except_metrics_which_have_no_resource_arn(
    resources: dict[str, dict[str, Any]],
) -> None:
    for owner, statement in _iam_statements(resources):
        if "*" not in _as_list(statement["Resource"]):
            continue
        actions = set(_as_list(statement["Action"]))
        if actions <= UNSCOPED_READS:
            continue
        assert actions == {"cloudwatch:PutMetricData"}, f"{owner} {statement.get('Sid')}"
        namespaces = statement["Condition"]["StringEquals"]["cloudwatch:namespace"]
        assert set(namespaces) <= set(CUSTOM_NAMESPACES), f"{owner} {statement.get('Sid')}"


def test_roles_attach_no_managed_policies(resources: dict[str, dict[str, Any]]) -> None:
    # AWS managed Lambda policies grant logs and SQS on every resource in the account.
    for role in resources_of_type({"Resources": resources}, "AWS::IAM::Role").values():
        assert "ManagedPolicyArns" not in role["Properties"]


def _granted_actions(resources: dict[str, dict[str, Any]], role: str) -> set[str]:
    owners = {role} | {
        logical_id
        for logical_id, policy in resources_of_type({"Resources": resources}, "AWS::IAM::Policy").items()
        if {"Ref": role} in policy["Properties"]["Roles"]
    }
    return {
        action
        for owner, statement in _iam_statements(resources)
        if owner in owners
        for action in _as_list(statement["Action"])
    }


def test_update_manager_may_sign_notify_store_jobs_and_presign_firmware(
    resources: dict[str, dict[str, Any]],
) -> None:
    granted = _granted_actions(resources, "UpdateManagerRole")
    assert {
        "kms:Sign",
        "sns:Publish",
        "s3:GetObject",
        "s3:PutObject",
        "s3:DeleteObject",
        "dynamodb:Query",
    } <= granted


def test_telemetry_processor_may_consume_its_queue_but_not_sign(resources: dict[str, dict[str, Any]]) -> None:
    granted = _granted_actions(resources, "TelemetryProcessorRole")
    assert {"sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes", "s3:GetObject"} <= granted
    assert not {action for action in granted if action.startswith(("kms:", "sns:"))}


def test_two_p256_keys_the_update_manager_signs_only_with_the_director_key(
    resources: dict[str, dict[str, Any]],
) -> None:
    update_manager = {"AWS": {"Fn::GetAtt": ["UpdateManagerRole", "Arn"]}}
    expected = {"DirectorKey": ["kms:Sign"], "ImageKey": ["kms:GetPublicKey"]}
    for logical_id, actions in expected.items():
        props = resources[logical_id]["Properties"]
        assert (props["KeySpec"], props["KeyUsage"]) == ("ECC_NIST_P256", "SIGN_VERIFY")
        grants = [s for s in props["KeyPolicy"]["Statement"] if s["Principal"] != ROOT_PRINCIPAL]
        assert [(s["Principal"], sorted(_as_list(s["Action"]))) for s in grants] == [
            (update_manager, actions)
        ]
    # The role's own policy says the same: Sign on the director key only.
    statements = resources["UpdateManagerSigningPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    signs = [s["Resource"] for s in statements if "kms:Sign" in _as_list(s["Action"])]
    assert signs == [{"Fn::GetAtt": ["DirectorKey", "Arn"]}]
    # Through the root statement IAM grants the rest: the operator signs releases with the image key.
    signers = [
        (owner, statement["Resource"])
        for owner, statement in _iam_statements(resources)
        if "kms:Sign" in _as_list(statement["Action"])
    ]
    assert sorted(signers, key=str) == [
        ("OperatorRole", {"Fn::GetAtt": ["ImageKey", "Arn"]}),
        ("UpdateManagerSigningPolicy", {"Fn::GetAtt": ["DirectorKey", "Arn"]}),
    ]


def test_kms_key_policies_give_wildcard_actions_to_the_account_root_only(
    resources: dict[str, dict[str, Any]],
) -> None:
    # The root statement is AWS's default key policy: without it the key cannot be administered.
    for logical_id, key in resources_of_type({"Resources": resources}, "AWS::KMS::Key").items():
        for statement in key["Properties"]["KeyPolicy"]["Statement"]:
            if any("*" in action for action in _as_list(statement["Action"])):
                assert statement["Principal"] == ROOT_PRINCIPAL, f"{logical_id} {statement.get('Sid')}"


# ---------------------------------------------------------------- S3


def test_every_bucket_is_encrypted_private_and_tls_only(resources: dict[str, dict[str, Any]]) -> None:
    buckets = resources_of_type({"Resources": resources}, "AWS::S3::Bucket")
    policies = resources_of_type({"Resources": resources}, "AWS::S3::BucketPolicy")
    assert set(buckets) == {"TelemetryBucket", "FirmwareBucket"}
    for logical_id, bucket in buckets.items():
        props = bucket["Properties"]
        sse = props["BucketEncryption"]["ServerSideEncryptionConfiguration"][0][
            "ServerSideEncryptionByDefault"
        ]
        assert sse["SSEAlgorithm"] in ("AES256", "aws:kms")
        assert props["PublicAccessBlockConfiguration"] == {
            "BlockPublicAcls": True,
            "BlockPublicPolicy": True,
            "IgnorePublicAcls": True,
            "RestrictPublicBuckets": True,
        }
        tls_denials = [
            statement
            for policy in policies.values()
            if policy["Properties"]["Bucket"] == {"Ref": logical_id}
            for statement in policy["Properties"]["PolicyDocument"]["Statement"]
            if statement["Effect"] == "Deny"
            and statement["Principal"] == "*"
            and statement.get("Condition", {}).get("Bool", {}).get("aws:SecureTransport") == "false"
            and {"Fn::Sub": f"${{{logical_id}.Arn}}/*"} in _as_list(statement["Resource"])
        ]
        assert tls_denials, f"{logical_id} has no TLS-only bucket policy"


def test_firmware_bucket_is_versioned(resources: dict[str, dict[str, Any]]) -> None:
    assert resources["FirmwareBucket"]["Properties"]["VersioningConfiguration"] == {"Status": "Enabled"}


def test_telemetry_lifecycle_tiers_raw_and_expires_raw_and_quarantine(
    resources: dict[str, dict[str, Any]],
) -> None:
    rules = resources["TelemetryBucket"]["Properties"]["LifecycleConfiguration"]["Rules"]
    by_prefix = {rule.get("Prefix"): rule for rule in rules if rule["Status"] == "Enabled"}
    assert by_prefix["raw/"]["Transitions"][0]["StorageClass"] == "STANDARD_IA"
    assert by_prefix["raw/"]["ExpirationInDays"] == 365
    assert by_prefix["quarantine/"]["ExpirationInDays"] == 90


def test_raw_uploads_notify_the_telemetry_queue_after_its_policy_exists(
    resources: dict[str, dict[str, Any]],
) -> None:
    bucket = resources["TelemetryBucket"]
    (notification,) = bucket["Properties"]["NotificationConfiguration"]["QueueConfigurations"]
    assert notification["Event"] == "s3:ObjectCreated:*"
    assert notification["Queue"] == {"Fn::GetAtt": ["TelemetryQueue", "Arn"]}
    assert notification["Filter"]["S3Key"]["Rules"] == [{"Name": "prefix", "Value": "raw/"}]
    assert "TelemetryQueuePolicy" in _as_list(bucket["DependsOn"])


def test_only_the_telemetry_bucket_may_send_to_the_queue(resources: dict[str, dict[str, Any]]) -> None:
    (statement,) = resources["TelemetryQueuePolicy"]["Properties"]["PolicyDocument"]["Statement"]
    assert statement["Principal"] == {"Service": "s3.amazonaws.com"}
    assert statement["Action"] == "sqs:SendMessage"
    assert statement["Condition"]["ArnEquals"]["aws:SourceArn"] == {
        "Fn::Sub": f"arn:${{AWS::Partition}}:s3:::{STACK}-telemetry-${{AWS::AccountId}}"
    }
    assert statement["Condition"]["StringEquals"]["aws:SourceAccount"] == {"Ref": "AWS::AccountId"}


# ---------------------------------------------------------------- SQS and Lambda


def test_telemetry_queue_redrives_to_the_dlq_and_outlasts_the_function(
    resources: dict[str, dict[str, Any]],
) -> None:
    queue = resources["TelemetryQueue"]["Properties"]
    assert queue["RedrivePolicy"] == {
        "deadLetterTargetArn": {"Fn::GetAtt": ["TelemetryDLQ", "Arn"]},
        "maxReceiveCount": 5,
    }
    timeout = resources["TelemetryProcessorFunction"]["Properties"]["Timeout"]
    assert queue["VisibilityTimeout"] >= 6 * timeout
    assert resources["TelemetryDLQ"]["Properties"]["MessageRetentionPeriod"] == 14 * 24 * 3600
    for logical_id in ("TelemetryQueue", "TelemetryDLQ"):
        assert resources[logical_id]["Properties"]["SqsManagedSseEnabled"] is True


def test_event_source_mapping_batches_and_reports_item_failures(resources: dict[str, dict[str, Any]]) -> None:
    (mapping,) = resources_of_type({"Resources": resources}, "AWS::Lambda::EventSourceMapping").values()
    props = mapping["Properties"]
    assert props["EventSourceArn"] == {"Fn::GetAtt": ["TelemetryQueue", "Arn"]}
    assert props["FunctionName"] == {"Ref": "TelemetryProcessorFunction"}
    assert props["BatchSize"] == 10
    # Short: the window adds up to its length to every object's latency (alarm at 5 s) at low rates.
    assert props["MaximumBatchingWindowInSeconds"] == {"Ref": "TelemetryBatchingWindowSeconds"}
    assert props["FunctionResponseTypes"] == ["ReportBatchItemFailures"]


@pytest.mark.parametrize("logical_id", ["TelemetryProcessorFunction", "UpdateManagerFunction"])
def test_functions_run_python_312_from_the_artifacts_bucket_with_every_resource_name(
    resources: dict[str, dict[str, Any]], logical_id: str
) -> None:
    props = resources[logical_id]["Properties"]
    assert props["Runtime"] == "python3.12"
    assert props["Architectures"] == [{"Ref": "LambdaArchitecture"}]
    assert props["Code"]["S3Bucket"] == {"Ref": "ArtifactsBucket"}
    env = props["Environment"]["Variables"]
    expected = {f"FLEETOTA_{field.upper()}" for field in CONTRACT_FIELDS}
    expected |= {"FLEETOTA_MODE", "FLEETOTA_STACK", "POWERTOOLS_SERVICE_NAME", "POWERTOOLS_METRICS_NAMESPACE"}
    assert expected <= set(env)
    assert env["FLEETOTA_MODE"] == "aws"
    assert env["POWERTOOLS_METRICS_NAMESPACE"] in CUSTOM_NAMESPACES
    log_group = resources[props["LoggingConfig"]["LogGroup"]["Ref"]]["Properties"]
    assert log_group["RetentionInDays"] == {"Ref": "LogRetentionDays"}


def test_update_manager_runs_every_minute(resources: dict[str, dict[str, Any]]) -> None:
    rule = resources["UpdateManagerSchedule"]["Properties"]
    assert rule["ScheduleExpression"] == "rate(1 minute)"
    assert [target["Arn"] for target in rule["Targets"]] == [{"Fn::GetAtt": ["UpdateManagerFunction", "Arn"]}]
    permission = resources["UpdateManagerSchedulePermission"]["Properties"]
    assert permission["Principal"] == "events.amazonaws.com"
    assert permission["SourceArn"] == {"Fn::GetAtt": ["UpdateManagerSchedule", "Arn"]}


# ---------------------------------------------------------------- alarms and dashboard


@pytest.mark.parametrize(
    ("logical_id", "namespace", "metric", "operator", "threshold"),
    [
        ("TelemetryLatencyAlarm", "Telemetry", "ProcessingLatency", "GreaterThanThreshold", 5000),
        ("ConnectivityAlarm", "FleetHealth", "ConnectivityPercent", "LessThanThreshold", 80),
        ("UpdateFailureRateAlarm", "OTAUpdates", "FailureRate", "GreaterThanThreshold", 5),
        ("LambdaErrorsAlarm", "AWS/Lambda", "Errors", "GreaterThanThreshold", 0),
    ],
)
def test_design_alarms_watch_their_metric_and_notify_the_alerts_topic(
    resources: dict[str, dict[str, Any]],
    logical_id: str,
    namespace: str,
    metric: str,
    operator: str,
    threshold: int,
) -> None:
    props = resources[logical_id]["Properties"]
    assert (props["Namespace"], props["MetricName"]) == (namespace, metric)
    assert (props["ComparisonOperator"], props["Threshold"]) == (operator, threshold)
    assert props["AlarmActions"] == [{"Ref": "AlertsTopic"}]
    assert props["OKActions"] == [{"Ref": "AlertsTopic"}]


def test_every_alarm_is_simple_stack_named_and_low_cardinality(resources: dict[str, dict[str, Any]]) -> None:
    alarms = resources_of_type({"Resources": resources}, "AWS::CloudWatch::Alarm")
    for logical_id, alarm in alarms.items():
        props = alarm["Properties"]
        # The local evaluator and moto support plain statistics only.
        assert props["Statistic"] in ("Average", "Sum", "Maximum", "Minimum", "SampleCount"), logical_id
        assert "Metrics" not in props and "ExtendedStatistic" not in props, logical_id
        assert props["AlarmName"]["Fn::Sub"].startswith(f"{STACK}-"), logical_id
        if props["Namespace"] in CUSTOM_NAMESPACES:
            assert "Dimensions" not in props, logical_id


def test_alarm_names_output_lists_every_alarm(template: dict[str, Any]) -> None:
    alarms = resources_of_type(template, "AWS::CloudWatch::Alarm")
    listed = template["Outputs"]["AlarmNames"]["Value"]["Fn::Join"][1]
    assert sorted(ref["Ref"] for ref in listed) == sorted(alarms)


def test_dashboard_shows_the_fleet_ota_and_pipeline_metrics(resources: dict[str, dict[str, Any]]) -> None:
    body = resources["Dashboard"]["Properties"]["DashboardBody"]["Fn::Sub"]
    # Substitute every ${...} with a plain string to check that the body is valid JSON.
    widgets = json.loads(re.sub(r"\$\{[^}]+\}", "x", body))["widgets"]
    shown = {line[1] for widget in widgets for line in widget["properties"].get("metrics", [])}
    assert {
        "VehiclesOnline",
        "BatteryAverage",
        "InProgress",
        "SuccessRate",
        "DataPoints",
        "ProcessingLatency",
        "InvalidRecords",
        "ApproximateNumberOfMessagesVisible",
        "Errors",
    } <= shown


def test_the_update_managers_memory_is_a_parameter_of_whole_vcpus_within_lambdas_limit(
    template: dict[str, Any],
) -> None:
    # services/ingest/snapshot_parts.py: the snapshot merge runs a worker process per vCPU (1,769 MB).
    memory = template["Parameters"]["UpdateManagerMemoryMB"]
    function = template["Resources"]["UpdateManagerFunction"]["Properties"]
    assert function["MemorySize"] == {"Ref": "UpdateManagerMemoryMB"}
    assert memory["Default"] in memory["AllowedValues"]
    assert all(128 <= mb <= 10240 and (mb % 1769 == 0 or mb == 10240) for mb in memory["AllowedValues"])


def test_the_telemetry_batching_window_is_a_parameter_within_lambdas_limit(template: dict[str, Any]) -> None:
    # docs/capacity.md: a fleet reporting every 60 s needs a longer window for full batches.
    window = template["Parameters"]["TelemetryBatchingWindowSeconds"]
    # Lambda takes 0-300 s for an SQS source; past 20 s the 5 s latency alarm could not hold.
    assert window["Default"] == 1 and window["MinValue"] >= 0 and window["MaxValue"] <= 300
