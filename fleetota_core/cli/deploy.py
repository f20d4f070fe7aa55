"""``deploy`` and ``destroy``: FleetOTA on a real AWS account, one command each way."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from fleetota_core.adapters.aws_account import NO_REGION, configured_region
from fleetota_core.adapters.clients import ClientFactory
from fleetota_core.errors import ConfigurationError
from fleetota_core.services.deploy.lambda_dependencies import ARCHITECTURES
from fleetota_core.services.deploy.stack_deploy import DeployRequest, deploy
from fleetota_core.services.deploy.stack_destroy import DestroyRequest, destroy

if TYPE_CHECKING:
    import argparse

    from fleetota_core.settings import Settings

DEFAULT_STACK = "fleetota"


class TerminalConsole:
    """Progress on stdout; questions answered on stdin (no answer, as at end of input, means no)."""

    def say(self, line: str) -> None:
        print(line, flush=True)

    def confirm(self, question: str) -> bool:
        try:
            return input(f"{question} [y/N] ").strip().lower() in {"y", "yes"}
        except EOFError:
            return False


def _add_target_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--stack-name",
        metavar="NAME",
        help="CloudFormation stack name: 1-37 lower-case letters, digits, hyphens "
        f"(default: FLEETOTA_STACK, else {DEFAULT_STACK!r})",
    )
    parser.add_argument(
        "--region",
        metavar="REGION",
        help="AWS region (default: FLEETOTA_REGION, AWS_REGION, AWS_DEFAULT_REGION or the profile's region)",
    )
    parser.add_argument(
        "--profile",
        metavar="PROFILE",
        help="named AWS profile for credentials (default: FLEETOTA_PROFILE, "
        "AWS_PROFILE or boto3's default credential chain)",
    )
    parser.add_argument(
        "--endpoint-url",
        metavar="URL",
        help="send every AWS call to this endpoint instead of AWS, e.g. LocalStack or a moto server "
        "(default: FLEETOTA_ENDPOINT_URL, else AWS itself)",
    )
    parser.add_argument(
        "--artifacts-bucket",
        metavar="BUCKET",
        help="S3 bucket for the Lambda zips (default: <stack>-artifacts-<account>-<region>, created "
        "encrypted and with public access blocked if missing)",
    )
    parser.add_argument("-y", "--yes", action="store_true", help="do not ask for confirmation")
    parser.add_argument(
        "--timeout",
        type=float,
        default=3600.0,
        metavar="SECONDS",
        help="give up waiting for the stack after this long (default: 3600)",
    )
    parser.add_argument(
        "--poll-interval",
        type=float,
        default=5.0,
        metavar="SECONDS",
        help="seconds between stack status checks (default: 5)",
    )


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "deploy",
        help="build the Lambda packages and create or update the stack on AWS",
        description="Build each Lambda's package for Lambda's python3.12 runtime, check Lambda's size "
        "limits, upload to the artifacts bucket, create a CloudFormation change set, show it and ask "
        "before executing (unless --yes), wait, and print the stack outputs. Safe to repeat: an "
        "unchanged checkout is a change set with no changes.",
    )
    _add_target_options(parser)
    parser.add_argument(
        "--alarm-email",
        metavar="EMAIL",
        help="address subscribed to the alarms topic (AWS mails a confirmation link); "
        "on update the previous value is kept unless given",
    )
    parser.add_argument(
        "--approval-min-vehicles",
        type=int,
        metavar="N",
        help="four-eyes: campaigns above N vehicles wait for a second operator's approval "
        "(default: only critical ones); on update the previous value is kept unless given",
    )
    parser.add_argument(
        "--architecture",
        choices=ARCHITECTURES,
        default="arm64",
        help="Lambda instruction set; packages are built for it (default: arm64, cheaper per GB-second)",
    )
    parser.add_argument(
        "--log-retention-days",
        type=int,
        metavar="DAYS",
        help="days to keep Lambda logs, one of CloudWatch's allowed values (default: the template's 30; "
        "on update the previous value)",
    )
    parser.add_argument(
        "--telemetry-batching-window",
        type=int,
        metavar="SECONDS",
        help="how long the telemetry queue gathers objects before invoking the processor, 0-20 "
        "(default: the template's 1; on update the previous value; docs/capacity.md says when to raise it)",
    )
    parser.add_argument(
        "--update-manager-memory",
        type=int,
        choices=(1769, 3538, 7076, 10240),
        metavar="MB",
        help="the update manager's memory: one vCPU, and one fleet-snapshot merge worker, per 1,769 MB "
        "(default: the template's 3538; on update the previous value; docs/capacity.md says how much)",
    )
    parser.add_argument(
        "--package-dir",
        type=Path,
        metavar="DIR",
        help="deploy prebuilt <function>.zip files from DIR instead of building (they must be built for "
        "--architecture)",
    )
    parser.set_defaults(func=run_deploy)

    parser = subparsers.add_parser(
        "destroy",
        help="empty the stack's buckets and delete the stack and its retained data",
        description="After a confirmation (unless --yes): empty every S3 bucket of the stack (all "
        "object versions), delete the stack and wait, then delete the buckets and table the "
        "template retains on stack deletion (unless --keep-retained).",
    )
    _add_target_options(parser)
    parser.add_argument(
        "--keep-retained",
        action="store_true",
        help="keep the resources the template retains (telemetry and firmware buckets with their "
        "objects, audit table); delete only the rest",
    )
    parser.add_argument(
        "--delete-artifacts",
        action="store_true",
        help="also empty and delete the artifacts bucket that holds the Lambda zips",
    )
    parser.set_defaults(func=run_destroy)


def _target_clients(args: argparse.Namespace, settings: Settings) -> tuple[str, ClientFactory]:
    """AWS-mode clients for the stack the options name; the region must be known."""
    profile = args.profile or settings.profile
    region = args.region or (settings.region if "region" in settings.model_fields_set else None)
    region = region or configured_region(profile)
    if not region:
        raise ConfigurationError(NO_REGION)
    stack_name = args.stack_name or settings.stack or DEFAULT_STACK
    target = settings.model_copy(
        update={
            "mode": "aws",
            "region": region,
            "profile": profile,
            "stack": stack_name,
            "endpoint_override": args.endpoint_url or settings.endpoint_override,
        }
    )
    return stack_name, ClientFactory(target)


def run_deploy(args: argparse.Namespace, settings: Settings) -> int:
    stack_name, clients = _target_clients(args, settings)
    request = DeployRequest(
        stack_name=stack_name,
        architecture=args.architecture,
        alarm_email=args.alarm_email,
        approval_min_vehicles=args.approval_min_vehicles,
        log_retention_days=args.log_retention_days,
        telemetry_batching_window_s=args.telemetry_batching_window,
        update_manager_memory_mb=args.update_manager_memory,
        artifacts_bucket=args.artifacts_bucket,
        assume_yes=args.yes,
        package_dir=args.package_dir,
        timeout_seconds=args.timeout,
        poll_seconds=args.poll_interval,
    )
    deploy(request, clients, TerminalConsole())
    return 0


def run_destroy(args: argparse.Namespace, settings: Settings) -> int:
    stack_name, clients = _target_clients(args, settings)
    request = DestroyRequest(
        stack_name=stack_name,
        assume_yes=args.yes,
        keep_retained=args.keep_retained,
        delete_artifacts=args.delete_artifacts,
        artifacts_bucket=args.artifacts_bucket,
        timeout_seconds=args.timeout,
        poll_seconds=args.poll_interval,
    )
    return 0 if destroy(request, clients, TerminalConsole()) else 1
