"""``deploy`` and ``destroy`` against moto's CloudFormation, through the same code path as on AWS.

The server is a moto server of its own, in a subprocess, not the shared session server:
- a deployed stack creates real-named resources that would survive into other tests' resets;
- two moto gaps are filled there, and patching moto's classes must not leak into the shared,
  in-process server:
  * moto never computes the outputs (nor registers the exports) of a stack created or updated
    through a change set (its ``ChangeSet.apply`` updates the resources only); outputs are what
    this test reads back, so the patch computes them as moto's ``create_stack`` does;
  * moto's CloudFormation has no ``AWS::CloudWatch::Alarm``, and the dashboard body refers to each
    alarm's ``Arn``, so without alarms moto refuses the template; the patch creates each alarm
    through moto's own CloudWatch ``put_metric_alarm``.
Every other type moto's CloudFormation skips is listed explicitly in ``MOTO_SKIPS`` below, and
the properties it drops are asserted where a test meets them (a function's ``Architectures``, a
bucket's ``VersioningConfiguration``).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from typing import TYPE_CHECKING

import pytest

from fleetota_core.adapters.clients import ClientFactory
from fleetota_core.adapters.resources import Resources, resolve_resources
from fleetota_core.infra_template import load_template
from fleetota_core.services.deploy.lambda_package import BUILD_DIR, REPO_ROOT
from fleetota_core.services.deploy.stack_deploy import DeployRequest, deploy
from fleetota_core.services.deploy.stack_destroy import DestroyRequest, destroy
from fleetota_core.settings import Settings

if TYPE_CHECKING:
    from collections.abc import Iterator

pytestmark = pytest.mark.slow

# Resource types in infra/template.yaml that moto 5.2.5's CloudFormation accepts but never creates
# ("No Moto CloudFormation support for ..."). On AWS each of these is created; here they are not.
# If moto learns one of them, or the template gains another, this list must change on purpose.
MOTO_SKIPS = {
    "AWS::Lambda::EventInvokeConfig",
    "AWS::S3::BucketPolicy",
    "AWS::SNS::Subscription",
    "AWS::SNS::TopicPolicy",
    "AWS::SQS::QueuePolicy",
}

_SERVER = r"""
import sys
from moto.cloudformation import models as cfn
from moto.cloudwatch.models import cloudwatch_backends
from moto.core.common_models import CloudFormationModel

_apply = cfn.ChangeSet.apply

def _apply_and_compute_outputs(self):
    _apply(self)
    self.stack.template = self.template
    self.stack._parse_template()
    self.stack.output_map = self.stack._create_output_map()
    # As moto's create_stack does; its delete_stack expects every export to be registered.
    backend = cfn.cloudformation_backends[self.stack.account_id][self.stack.region_name]
    for export in self.stack.exports:
        backend.exports[export.name] = export

cfn.ChangeSet.apply = _apply_and_compute_outputs

class CloudFormationAlarm(CloudFormationModel):
    __module__ = "moto.cloudwatch.cloudformation_alarm"  # moto's registry keys models by service module

    def __init__(self, alarm):
        self.alarm = alarm

    @staticmethod
    def cloudformation_name_type():
        return "AlarmName"

    @staticmethod
    def cloudformation_type():
        return "AWS::CloudWatch::Alarm"

    @classmethod
    def has_cfn_attr(cls, attr):
        return attr == "Arn"

    def get_cfn_attribute(self, attribute_name):
        return self.alarm.alarm_arn

    @property
    def physical_resource_id(self):
        return self.alarm.name

    @classmethod
    def create_from_cloudformation_json(cls, resource_name, cloudformation_json, account_id, region, **kw):
        p = cloudformation_json["Properties"]
        alarm = cloudwatch_backends[account_id][region].put_metric_alarm(
            name=resource_name, namespace=p["Namespace"], metric_name=p["MetricName"],
            comparison_operator=p["ComparisonOperator"], evaluation_periods=int(p["EvaluationPeriods"]),
            period=int(p["Period"]), threshold=float(p["Threshold"]), statistic=p.get("Statistic"),
            description=p.get("AlarmDescription", ""),
            dimensions=[{"Name": d["Name"], "Value": d["Value"]} for d in p.get("Dimensions", [])],
            alarm_actions=p.get("AlarmActions", []), ok_actions=p.get("OKActions", []),
            treat_missing_data=p.get("TreatMissingData"),
        )
        return cls(alarm)

    @classmethod
    def delete_from_cloudformation_json(cls, resource_name, cloudformation_json, account_id, region_name):
        cloudwatch_backends[account_id][region_name].delete_alarms([resource_name])

from moto.server import main
main(["-H", "127.0.0.1", "-p", sys.argv[1]])
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = _free_port()
    log = tmp_path_factory.mktemp("moto") / "server.log"
    with log.open("w") as sink:
        server = subprocess.Popen([sys.executable, "-c", _SERVER, str(port)], stdout=sink, stderr=sink)
    deadline = time.monotonic() + 30
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            break
        except OSError:
            if time.monotonic() > deadline or server.poll() is not None:
                server.kill()
                pytest.fail("the moto server for the deploy tests did not start")
            time.sleep(0.1)
    yield f"http://127.0.0.1:{port}"
    server.terminate()
    server.wait(timeout=10)


@pytest.fixture(scope="module")
def aws_env() -> Iterator[None]:
    # Module scope: the autouse per-test credential fixture comes too late for the module's deploy.
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AWS_ACCESS_KEY_ID", "testing")
        patch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        patch.delenv("AWS_PROFILE", raising=False)
        yield


class RecordingConsole:
    def __init__(self, answer: bool = True) -> None:
        self.lines: list[str] = []
        self.questions: list[str] = []
        self.answer = answer

    def say(self, line: str) -> None:
        self.lines.append(line)

    def confirm(self, question: str) -> bool:
        self.questions.append(question)
        return self.answer


def _clients(endpoint: str) -> ClientFactory:
    return ClientFactory(Settings(mode="aws", region="us-east-1", endpoint_override=endpoint))


def _request(stack_name: str, **overrides: object) -> DeployRequest:
    values: dict[str, object] = {
        "stack_name": stack_name,
        "alarm_email": "ops@example.com",
        "assume_yes": True,
        "poll_seconds": 0.05,
        "timeout_seconds": 60,
    }
    return DeployRequest(**{**values, **overrides})  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def deployed(endpoint: str, aws_env: None) -> tuple[str, object, RecordingConsole]:
    stack_name = f"deploytest-{uuid.uuid4().hex[:8]}"
    console = RecordingConsole()
    result = deploy(_request(stack_name), _clients(endpoint), console)
    return stack_name, result, console


def test_deploy_creates_the_stack_and_reads_every_resource_back_from_its_outputs(deployed) -> None:
    stack_name, result, console = deployed
    assert result.stack_status == "CREATE_COMPLETE"
    assert result.changed
    resources = Resources.from_outputs(result.outputs)
    assert resources.vehicles_table == f"{stack_name}-vehicles"
    assert resources.telemetry_bucket == f"{stack_name}-telemetry-123456789012"
    assert resources.image_key_alias == f"alias/{stack_name}-image"
    assert resources.director_key_alias == f"alias/{stack_name}-director"
    assert resources.update_function == f"{stack_name}-update-manager"
    assert any("TelemetryBucketName" in line for line in console.lines), "the outputs are printed"
    assert any("Add" in line and "TelemetryProcessorFunction" in line for line in console.lines)


def test_moto_creates_every_template_resource_except_the_types_it_is_known_to_skip(
    deployed, endpoint
) -> None:
    stack_name, _, _ = deployed
    template = load_template()["Resources"]
    created = {
        r["LogicalResourceId"]
        for r in _clients(endpoint).cloudformation.list_stack_resources(StackName=stack_name)[
            "StackResourceSummaries"
        ]
    }
    skipped_types = {body["Type"] for logical_id, body in template.items() if logical_id not in created}
    assert skipped_types == MOTO_SKIPS


def test_the_lambda_functions_run_the_uploaded_packages_with_the_template_handlers(
    deployed, endpoint
) -> None:
    stack_name, result, _ = deployed
    clients = _clients(endpoint)
    stack = clients.cloudformation.describe_stacks(StackName=stack_name)["Stacks"][0]
    parameters = {p["ParameterKey"]: p["ParameterValue"] for p in stack["Parameters"]}
    assert parameters["LambdaArchitecture"] == "arm64"
    for function, output, code_key in (
        ("telemetry_processor", "TelemetryProcessorFunctionName", "TelemetryProcessorCodeKey"),
        ("update_manager", "UpdateManagerFunctionName", "UpdateManagerCodeKey"),
    ):
        config = clients.client("lambda").get_function_configuration(FunctionName=result.outputs[output])
        assert config["Runtime"] == "python3.12"
        assert config["Handler"] == f"lambdas/{function}/handler.handler"
        assert parameters[code_key].startswith(f"lambda/{function}/arm64-py3.12-")
        uploaded = clients.s3.head_object(Bucket=parameters["ArtifactsBucket"], Key=parameters[code_key])
        assert config["CodeSize"] == uploaded["ContentLength"], "the function holds the uploaded zip"
        # moto's CloudFormation drops Architectures (and LoggingConfig) from AWS::Lambda::Function, so
        # the function reports moto's default; on AWS it is the LambdaArchitecture parameter.
        assert config["Architectures"] == ["x86_64"]


def test_aws_mode_finds_every_resource_from_the_stack_outputs(deployed, endpoint) -> None:
    stack_name, result, _ = deployed
    settings = Settings(mode="aws", region="us-east-1", stack=stack_name, endpoint_override=endpoint)
    clients = ClientFactory(settings)
    resources = resolve_resources(settings, clients)
    assert resources == Resources.from_outputs(result.outputs)
    # The simulator and the dashboard use these names unchanged: the bucket and table answer.
    clients.s3.put_object(Bucket=resources.telemetry_bucket, Key="raw/probe.ndjson.gz", Body=b"")
    assert (
        clients.dynamodb.describe_table(TableName=resources.vehicles_table)["Table"]["TableStatus"]
        == "ACTIVE"
    )


def test_redeploying_an_unchanged_checkout_is_a_successful_no_change_deploy(deployed, endpoint) -> None:
    stack_name, first, _ = deployed
    console = RecordingConsole()
    again = deploy(_request(stack_name), _clients(endpoint), console)
    assert not again.changed
    assert again.outputs == first.outputs
    assert any("no changes" in line for line in console.lines)
    assert not console.questions


def test_declining_a_new_stack_change_set_changes_nothing(endpoint, aws_env) -> None:
    stack_name = f"declined-{uuid.uuid4().hex[:8]}"
    console = RecordingConsole(answer=False)
    with pytest.raises(Exception, match="deploy cancelled"):
        deploy(_request(stack_name, assume_yes=False), _clients(endpoint), console)
    assert console.questions == [f"Execute this change set on {stack_name}?"]
    stacks = _clients(endpoint).cloudformation.describe_stacks()["Stacks"]
    assert all(s["StackName"] != stack_name or s["StackStatus"] == "DELETE_COMPLETE" for s in stacks)


def test_destroy_empties_the_versioned_buckets_and_deletes_the_stack_and_retained_data(
    endpoint, aws_env
) -> None:
    stack_name = f"destroytest-{uuid.uuid4().hex[:8]}"
    clients = _clients(endpoint)
    result = deploy(_request(stack_name), clients, RecordingConsole())
    firmware = result.outputs["FirmwareBucketName"]
    # moto's CloudFormation ignores the bucket's VersioningConfiguration; on AWS the template turns
    # versioning on. Turn it on here so destroy meets old versions and delete markers as on AWS.
    assert "Status" not in clients.s3.get_bucket_versioning(Bucket=firmware)
    clients.s3.put_bucket_versioning(Bucket=firmware, VersioningConfiguration={"Status": "Enabled"})
    for body in (b"v1", b"v2"):
        clients.s3.put_object(Bucket=firmware, Key="releases/1.0.0.bin", Body=body)
    clients.s3.delete_object(Bucket=firmware, Key="releases/1.0.0.bin")  # leaves a delete marker

    console = RecordingConsole()
    assert destroy(DestroyRequest(stack_name, poll_seconds=0.05, timeout_seconds=60), clients, console)

    assert console.questions, "destroy asks before deleting"
    assert any("emptying " + firmware + ": 3 objects removed" in line for line in console.lines)
    assert all(s["StackName"] != stack_name for s in clients.cloudformation.describe_stacks()["Stacks"])
    buckets = {b["Name"] for b in clients.s3.list_buckets()["Buckets"]}
    assert firmware not in buckets and result.outputs["TelemetryBucketName"] not in buckets
    assert result.outputs["AuditTableName"] not in clients.dynamodb.list_tables()["TableNames"]


def test_the_cli_deploys_prebuilt_packages_and_destroys_everything_it_made(deployed, endpoint) -> None:
    stack_name = f"clitest-{uuid.uuid4().hex[:8]}"
    env = {**os.environ, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
    common = ["--stack-name", stack_name, "--region", "us-east-1", "--endpoint-url", endpoint, "--yes"]
    common += ["--poll-interval", "0.05"]

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "fleetota_core", *args, *common],
            capture_output=True,
            text=True,
            env=env,
            cwd=REPO_ROOT,
            timeout=120,
            check=False,
        )

    # The module's first deploy built these for arm64; --package-dir deploys them without a rebuild.
    deployed_now = cli("deploy", "--package-dir", str(BUILD_DIR / "packages" / "arm64-py3.12"))
    assert deployed_now.returncode == 0, deployed_now.stderr
    assert f"==> stack {stack_name}: CREATE_COMPLETE" in deployed_now.stdout
    assert f"VehiclesTableName               {stack_name}-vehicles" in deployed_now.stdout

    destroyed = cli("destroy", "--delete-artifacts")
    assert destroyed.returncode == 0, destroyed.stderr
    assert f"==> stack {stack_name} deleted" in destroyed.stdout
    clients = _clients(endpoint)
    assert all(s["StackName"] != stack_name for s in clients.cloudformation.describe_stacks()["Stacks"])
    assert not [b for b in clients.s3.list_buckets()["Buckets"] if b["Name"].startswith(f"{stack_name}-")]


def test_the_simulator_in_aws_mode_uploads_to_the_deployed_telemetry_bucket(deployed, endpoint) -> None:
    stack_name, result, _ = deployed
    env = {
        **os.environ,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "FLEETOTA_MODE": "aws",
        "FLEETOTA_STACK": stack_name,
        "FLEETOTA_REGION": "us-east-1",
        "FLEETOTA_ENDPOINT_URL": endpoint,
    }
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "simulator",
            "--vehicles",
            "5",
            "--ticks",
            "2",
            "--speed",
            "0",
            "--seed",
            "7",
            "--no-ota",
            "--quiet",
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO_ROOT,
        timeout=120,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    listing = _clients(endpoint).s3.list_objects_v2(
        Bucket=result.outputs["TelemetryBucketName"], Prefix="raw/dt="
    )
    assert listing.get("KeyCount", 0) >= 1, "the simulator's batches land under raw/ in the stack's bucket"
