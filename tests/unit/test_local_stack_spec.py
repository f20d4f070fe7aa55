"""Reading infra/template.yaml into the local stack's resources, with intrinsics resolved locally."""

from __future__ import annotations

import json

import pytest

from fleetota_core.adapters.resources import Resources
from fleetota_core.errors import ConfigurationError
from fleetota_core.infra_template import load_template
from fleetota_core.local.stack_spec import read_stack_spec
from fleetota_core.local.template_resolver import TemplateResolver
from fleetota_core.settings import Settings

SETTINGS = Settings(mode="local", local_port=4566, stack="", region="us-east-1")
ENDPOINT = "http://127.0.0.1:4566"


def _resolver(template: dict) -> TemplateResolver:
    resources = Resources.for_local("demo", "eu-west-1", ENDPOINT).as_dict()
    return TemplateResolver(
        template, stack="demo", region="eu-west-1", endpoint_url=ENDPOINT, resources=resources
    )


TEMPLATE = {
    "Parameters": {"Email": {"Type": "String", "Default": ""}},
    "Conditions": {"HasEmail": {"Fn::Not": [{"Fn::Equals": [{"Ref": "Email"}, ""]}]}},
    "Resources": {
        "TelemetryQueue": {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": "ignored-by-contract"}},
        "ExtraTopic": {
            "Type": "AWS::SNS::Topic",
            "Properties": {"TopicName": {"Fn::Sub": "${AWS::StackName}-x"}},
        },
        "Unnamed": {"Type": "AWS::SQS::Queue", "Properties": {}},
        "Mail": {"Type": "AWS::SNS::Subscription", "Condition": "HasEmail", "Properties": {}},
    },
}


def test_contract_names_win_over_the_template_names():
    r = _resolver(TEMPLATE)
    assert r.ref("TelemetryQueue") == f"{ENDPOINT}/123456789012/demo-telemetry"
    assert r.get_att("TelemetryQueue", "Arn") == "arn:aws:sqs:eu-west-1:123456789012:demo-telemetry"
    assert r.get_att("TelemetryQueue", "QueueName") == "demo-telemetry"


def test_other_resources_use_their_name_property_or_the_stack_and_logical_id():
    r = _resolver(TEMPLATE)
    assert r.ref("ExtraTopic") == "arn:aws:sns:eu-west-1:123456789012:demo-x"
    assert r.physical_name("Unnamed") == "demo-Unnamed"


def test_sub_join_and_conditions_resolve():
    r = _resolver(TEMPLATE)
    assert r.resolve({"Fn::Sub": "${AWS::Region}/${TelemetryQueue.QueueName}/${!Literal}"}) == (
        "eu-west-1/demo-telemetry/${Literal}"
    )
    assert r.resolve({"Fn::Sub": ["${A}-${AWS::AccountId}", {"A": "x"}]}) == "x-123456789012"
    assert r.resolve({"Fn::Join": [",", ["a", {"Ref": "AWS::StackName"}]]}) == "a,demo"
    assert r.resolve({"Fn::If": ["HasEmail", "yes", {"Ref": "AWS::NoValue"}]}) is not None
    assert r.resolve({"List": [{"Fn::If": ["HasEmail", "yes", {"Ref": "AWS::NoValue"}]}]}) == {"List": []}
    assert not r.include(TEMPLATE["Resources"]["Mail"])


def test_unknown_resources_and_functions_are_configuration_errors():
    r = _resolver(TEMPLATE)
    with pytest.raises(ConfigurationError, match="NoSuch"):
        r.ref("NoSuch")
    with pytest.raises(ConfigurationError, match="Fn::ImportValue"):
        r.resolve({"Fn::ImportValue": "x"})


def test_the_spec_takes_queue_settings_from_the_template():
    template = load_template()
    spec = read_stack_spec(SETTINGS, template)
    queue = spec.queue(spec.resources.telemetry_queue_url)
    props = template["Resources"]["TelemetryQueue"]["Properties"]
    assert queue.max_receive_count == props["RedrivePolicy"]["maxReceiveCount"]
    assert queue.attributes["VisibilityTimeout"] == str(props["VisibilityTimeout"])
    assert (
        json.loads(queue.attributes["RedrivePolicy"])["deadLetterTargetArn"]
        == spec.queue(spec.resources.telemetry_dlq_url).arn
    )


def test_the_spec_names_alarms_after_the_local_stack_and_resolves_their_dimensions():
    spec = read_stack_spec(SETTINGS, load_template())
    names = {a["AlarmName"] for a in spec.alarms}
    assert names and all(name.startswith("fleetota-local-") for name in names)
    dimension_values = {d["Value"] for a in spec.alarms for d in a.get("Dimensions", [])}
    assert spec.resources.telemetry_function in dimension_values


def test_the_spec_wires_the_queue_to_the_telemetry_function_and_the_schedule_to_the_update_manager():
    spec = read_stack_spec(SETTINGS, load_template())
    (source,) = spec.queue_sources
    assert spec.function(source.function).key == "telemetry_processor"
    assert spec.queue(source.queue_arn).url == spec.resources.telemetry_queue_url
    targets = [spec.function(arn).key for schedule in spec.schedules for arn, _ in schedule.targets]
    assert targets == ["update_manager"]
    assert all(f.source.is_file() for f in spec.functions)
