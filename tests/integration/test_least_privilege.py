"""Least privilege, proven: every AWS call of every principal, checked against infra/template.yaml.

The flows run once per module on the local stack: vehicles drive and upload telemetry, an operator
publishes a release and steers a continuous campaign (a vehicle provisioned mid-campaign joins it)
and retires a vehicle (the registry change feed, read by the processor),
the update manager ticks (and its real handler runs on
the schedule), the telemetry processor ingests OTA reports and a bad record, and the operator reads
every dashboard page and a few CLI commands. Each recorded call is mapped to its IAM action and
resource ARN (tests/iam/requests.py) and evaluated against its principal's policies
(tests/iam/policy.py). moto enforces none of this.
"""

from __future__ import annotations

import gzip
from collections import Counter, defaultdict
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from io import StringIO
from typing import TYPE_CHECKING, Any

import pytest
import streamlit as st

import fleetota_core.views.backend as dashboard_backend
from fleetota_core import composition
from fleetota_core.adapters import fleet_shards, vehicle_directory
from fleetota_core.adapters.fleet_snapshot import DELTA_PREFIX, SNAPSHOT_KEY, encode
from fleetota_core.adapters.vehicle_registry import VehicleRegistry
from fleetota_core.cli import main as fleetota_cli
from fleetota_core.domain.campaign import CampaignSpec, CampaignState, WaveSpec
from fleetota_core.domain.delivery import DeliveryPolicy, InstallPolicy
from fleetota_core.domain.deployment import RetryPolicy
from fleetota_core.domain.vehicle_identity import RegistrationStatus
from fleetota_core.infra_template import load_template
from fleetota_core.services.campaigns.actions import finish_campaign, pause_campaign, resume_campaign
from fleetota_core.services.campaigns.create import create_campaign, get_campaign
from fleetota_core.services.campaigns.tick import run_tick
from fleetota_core.services.delta.publish import publish_with_deltas
from fleetota_core.services.ingest import batch as ingest_batch
from fleetota_core.services.ingest.batch import CachedCatalog
from fleetota_core.services.ingest.fleet_health import publish_fleet_health
from simulator.firmware_images import catalogue_image
from simulator.ota_client import OtaFaults
from simulator.vehicle_keys import register_fleet
from tests.iam.policy import Request, Statement, applies, evaluate
from tests.iam.principals import role_statements, template_facts, without_statement
from tests.iam.recorder import AWS_SERVICE, HARNESS, UNATTRIBUTED, CallRecorder
from tests.iam.requests import UnmappedCall, authorisations
from tests.integration import test_campaign_e2e as campaign_e2e
from tests.integration.conftest import open_stack, use_dummy_credentials
from tests.integration.test_campaign_e2e import ANY_TIME, NEW, publish, world
from tests.integration.test_pages_apptest import PAGES, render

if TYPE_CHECKING:
    from collections.abc import Iterator

    from fleetota_core.settings import Settings
    from tests.iam.principals import Principal, TemplateFacts
    from tests.iam.requests import Call

pytestmark = pytest.mark.slow

VEHICLES = "VehicleGatewayRole"
OPERATOR = "OperatorRole"
UPDATE_MANAGER = "UpdateManagerRole"
VEHICLE_COUNT, SEED = 8, 21

# Allowed actions no flow uses, each reviewed: (role, Sid, action) -> why it stays.
REVIEWED_UNUSED_ACTIONS: dict[tuple[str, str, str], str] = {
    ("TelemetryProcessorRole", "ConsumeTelemetryQueue", "sqs:GetQueueAttributes"): (
        "Lambda's SQS event source mapping reads the queue's attributes with the function's role "
        "when it is created or enabled; the local runtime does not"
    ),
}
# Statements no flow needs at all, each reviewed: (role, Sid) -> why it stays.
REVIEWED_UNUSED_STATEMENTS: dict[tuple[str, str], str] = {
    ("OperatorRole", "ReadAlarmHistory"): (
        "AWS mode only: the alerts feed adds the alarm history there; moto implements no "
        "describe_alarm_history, and locally the alarm evaluator records its alerts in the ledger"
    ),
    ("OperatorRole", "DiscardFailedPublish"): (
        "only when signing or storing a release fails after its artifact was uploaded "
        "(services/campaigns/releases.py, _discard_artifact; tests/unit/test_firmware_publish.py)"
    ),
}


@dataclass
class Recording:
    """The calls the flows made, and the template and settings they are checked against."""

    settings: Settings
    template: dict[str, Any]
    facts: TemplateFacts
    calls: list[Call]


def run_flows(stack, rec: CallRecorder, mp: pytest.MonkeyPatch) -> None:
    # Targeting as for a large fleet (the snapshot and projected registry gets); the small-fleet table
    # scan uses calls the other flows record anyway.
    mp.setattr(vehicle_directory, "SMALL_FLEET_ROWS", 0)
    # Provisioning the fleet into the registry is the fleet owner's act, never a vehicle's: a vehicle
    # that could write the registry could vouch for itself.
    held_back: list[Any] = []

    def provision_as_operator(clients: Any, resources: Any, fleet: list[Any]) -> Any:
        # One vehicle (of a model others have) is provisioned only mid-campaign, and joins it.
        late = next(v for v in reversed(fleet) if any(o.model == v.model for o in fleet if o is not v))
        held_back.append(late)
        with rec.acting_as(OPERATOR):
            return register_fleet(clients, resources, [v for v in fleet if v is not late])

    mp.setattr(campaign_e2e, "register_fleet", provision_as_operator)
    with rec.acting_as(VEHICLES):
        w = world(stack, VEHICLE_COUNT, OtaFaults(install_failure_rate=0.3), seed=SEED)
    read_job = w.listener.client.read_job

    def read_in_own_session(vin: str, key: str) -> bytes:
        # The gateway reads a vehicle's job document in that vehicle's session, tagged vin=<VIN>.
        with rec.acting_as(VEHICLES, vin=vin):
            return read_job(vin, key)

    w.listener.client.read_job = read_in_own_session
    with rec.acting_as(HARNESS):  # a stack upgraded from the single-document snapshot
        stack.clients.s3.put_object(
            Bucket=stack.resources.telemetry_bucket,
            Key=SNAPSHOT_KEY,
            Body=encode({}, datetime.now(UTC).isoformat(), DELTA_PREFIX),
        )
    with rec.acting_as(UPDATE_MANAGER):  # the schedule's first tick: the fleet snapshot targeting reads
        publish_fleet_health(stack.clients, stack.resources, now=datetime.now(UTC) + timedelta(seconds=31))
    with rec.acting_as(OPERATOR):
        # The release carries a delta from the version most of the fleet runs (published first):
        # publishing reads that image back, and the vehicles on it download the delta.
        models = sorted({v.model for v in w.sim.vehicles})
        base = Counter(v.firmware_version for v in w.sim.vehicles).most_common(1)[0][0]
        publish(stack, base, models, catalogue_image(base))
        release, _ = publish_with_deltas(
            catalogue_image(NEW), NEW, models, [], None, "iam", "alice", stack.ports, deltas_from=1
        )
        assert [d.source_version for d in release.deltas] == [base]
        spec = CampaignSpec(
            name="least privilege",
            release_version=NEW,
            waves=(WaveSpec(percent=50, success_threshold_pct=50), WaveSpec(percent=50)),
            retry=RetryPolicy(max_attempts=5, backoff_base_s=30),
            eligibility=ANY_TIME,
            max_in_flight=100,
            continuous=True,
            # Two-phase delivery under a cellular budget: install permits and budget reservations
            # are calls of the update manager too.
            delivery=DeliveryPolicy(install=InstallPolicy.WINDOW, cellular_budget_gb=1),
        )
        campaign = create_campaign(spec, "alice", stack.ports, "iam", now=w.now)
    for minute in range(40):
        with rec.acting_as(UPDATE_MANAGER):
            run_tick(stack.ports, w.now)
        with rec.acting_as(VEHICLES):
            w.listener.poll()
            w.sim.step()
        stack.runtime.drain(timeout=60)
        if minute == 1:
            with rec.acting_as(OPERATOR):
                pause_campaign(campaign.campaign_id, "alice", "check wave 1", stack.ports)
                resume_campaign(campaign.campaign_id, "alice", "checked", stack.ports)
                register_fleet(stack.clients, stack.resources, held_back)
            mp.setattr(ingest_batch, "_pipelines", {})  # a cold processor: no cached "unknown vehicle"
        with rec.acting_as(HARNESS):
            now = get_campaign(campaign.campaign_id, stack.ports)
        if now.state is CampaignState.COMPLETED:
            break
        if now.enrolling and now.counters.joined and now.counters.succeeded == now.total:
            with rec.acting_as(OPERATOR):
                finish_campaign(campaign.campaign_id, "alice", "every vehicle updated", stack.ports)
    with rec.acting_as(HARNESS):
        done = get_campaign(campaign.campaign_id, stack.ports)
    assert done.state is CampaignState.COMPLETED and done.counters.joined == 1
    with rec.acting_as(OPERATOR):  # a vehicle is retired: the write goes to the registry change feed too
        registry = VehicleRegistry.of_stack(stack.clients.dynamodb, stack.resources)
        vin = w.sim.vehicles[0].vin
        registry.put_many(
            [registry.get_many([vin])[vin].model_copy(update={"status": RegistrationStatus.RETIRED})]
        )
    with rec.acting_as(VEHICLES):
        w.sim.step()  # the processor's next feed read evicts it (and its records are quarantined)
    stack.runtime.drain(timeout=60)
    assert w.listener.client.stats["artifact_delta"] > 0, "some vehicles downloaded the delta"
    # The update manager's real handler, twice: the fleet snapshot is built, then deltas merged.
    stack.runtime.fire_schedule()
    stack.runtime.fire_schedule()
    # The fleet outgrows one shard: the next tick doubles the shards and retires the old ones.
    mp.setattr(fleet_shards, "SHARD_VEHICLES", 2)
    with rec.acting_as(UPDATE_MANAGER):  # two hours on: merged deltas are deleted
        publish_fleet_health(stack.clients, stack.resources, now=datetime.now(UTC) + timedelta(hours=2))
    # A record the processor must quarantine, and an object gone before the processor got to it.
    hour = f"raw/{datetime.now(UTC):dt=%Y-%m-%d/hour=%H}"
    with rec.acting_as(VEHICLES):
        for name in ("bad", "gone"):
            stack.clients.s3.put_object(
                Bucket=stack.resources.telemetry_bucket,
                Key=f"{hour}/{name}.ndjson.gz",
                Body=gzip.compress(b"not json\n"),
            )
    with rec.acting_as(HARNESS):
        stack.clients.s3.delete_object(Bucket=stack.resources.telemetry_bucket, Key=f"{hour}/gone.ndjson.gz")
        # One of their messages comes again, as after an invocation that timed out: a redelivery,
        # which the processor looks up in the ledger first.
        queue = stack.resources.telemetry_queue_url
        taken = stack.clients.sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=1, WaitTimeSeconds=5)
        for message in taken.get("Messages", []):
            stack.clients.sqs.change_message_visibility(
                QueueUrl=queue, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
            )
    stack.runtime.drain(timeout=30)
    st.cache_data.clear()
    st.cache_resource.clear()
    with rec.acting_as(OPERATOR):
        at = render(PAGES[0])  # one session visits every page, as an operator clicking through
        for page in PAGES:
            if page != PAGES[0]:
                at.switch_page(page)
                at.run()
            assert not at.exception, (page, [e.value for e in at.exception])
        for argv in (["campaign", "list"], ["firmware", "list"], ["fleet"], ["telemetry", "stats"]):
            with redirect_stdout(StringIO()), redirect_stderr(StringIO()):
                assert fleetota_cli(argv) == 0, argv
    with rec.acting_as(VEHICLES):
        w.listener.close()


@pytest.fixture(scope="module")
def recording(moto_port: int, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Recording]:
    with pytest.MonkeyPatch.context() as mp:
        use_dummy_credentials(mp)
        mp.setenv("FLEETOTA_DEMO_FLEET", "0")
        mp.chdir(tmp_path_factory.mktemp("least-privilege"))
        with open_stack(moto_port, mp) as stack:
            template = load_template()
            facts = template_facts(stack.settings, template)
            rec = CallRecorder(facts)
            rec.install(mp)
            # A warm processor reloads the release catalogue every minute; here every batch does, in a
            # cold processor (not one an earlier test of this session warmed up).
            mp.setattr(CachedCatalog.__init__, "__defaults__", (0.0,))
            mp.setattr(ingest_batch, "_pipelines", {})
            # The change feed waits 30 s for late deltas; the flows take about that long in all.
            mp.setattr(composition, "DELTA_SETTLE", timedelta(seconds=1))
            # In local mode the dashboard first makes sure the stack is provisioned: CloudFormation's job.
            start = dashboard_backend.start_local_stack

            def start_as_harness(settings):
                with rec.acting_as(HARNESS):
                    return start(settings)

            mp.setattr(dashboard_backend, "start_local_stack", start_as_harness)
            with rec.started():
                run_flows(stack, rec, mp)
            yield Recording(stack.settings, template, facts, rec.checked_calls())


def denials(principals: dict[str, Principal], rec: Recording, only: str | None = None) -> list[str]:
    """One line per call a principal's policies do not allow (or that cannot be checked)."""
    problems: dict[tuple[str, str], list[str]] = defaultdict(list)
    for call in rec.calls:
        if only and call.principal != only:
            continue
        where = f"{call.principal} {call.service}:{call.operation} ({call.how})"
        if call.principal == UNATTRIBUTED or call.principal not in principals:
            problems[(where, "no principal of the template made this call")].append("")
            continue
        try:
            requests = authorisations(call, rec.facts)
        except UnmappedCall as exc:
            problems[(where, f"unmapped operation {exc}; add it to tests/iam/requests.py")].append("")
            continue
        for request in requests:
            decision = evaluate(principals[call.principal].statements, request, dict(call.tags))
            if not decision.allowed:
                problems[(f"{call.principal} is denied {request.action}", where)].append(request.resource)
    lines = []
    for (what, detail), arns in sorted(problems.items()):
        shown = sorted(set(arns) - {""})
        more = f" (+{len(shown) - 3} more)" if len(shown) > 3 else ""
        lines.append(f"{what} on {', '.join(shown[:3])}{more} [{detail}]" if shown else f"{what}: {detail}")
    return lines


def usage(rec: Recording) -> dict[str, list[tuple[Statement, Request, dict[str, str]]]]:
    """Per role, every (statement, request, principal tags) where the statement allowed a call."""
    used: dict[str, list[tuple[Statement, Request, dict[str, str]]]] = defaultdict(list)
    for call in rec.calls:
        principal = rec.facts.principals.get(call.principal)
        if principal is None:
            continue
        for request in authorisations(call, rec.facts):
            decision = evaluate(principal.statements, request, dict(call.tags))
            for statement in principal.statements:
                if statement.sid in decision.allowed_by:
                    used[call.principal].append((statement, request, dict(call.tags)))
    return used


def test_every_call_of_every_principal_is_allowed_by_its_policy_in_the_template(recording):
    principals = {c.principal for c in recording.calls}
    assert {VEHICLES, OPERATOR, UPDATE_MANAGER, "TelemetryProcessorRole"} <= principals
    problems = denials(recording.facts.principals, recording)
    assert not problems, "calls infra/template.yaml does not allow:\n" + "\n".join(problems)


def test_every_allowed_action_and_resource_is_used_by_a_flow_or_reviewed(recording):
    used = usage(recording)
    unused, stale, pairs = [], [], []
    for role, principal in recording.facts.principals.items():
        for statement in principal.statements:
            hits = [(request, tags) for s, request, tags in used.get(role, []) if s.sid == statement.sid]
            if (role, statement.sid) in REVIEWED_UNUSED_STATEMENTS:
                if hits:
                    stale.append(f"{role} {statement.sid} is reviewed as unused but allowed {hits[0][0]}")
                continue
            for action in statement.actions:
                one = Statement(statement.sid, "Allow", actions=(action,), resources=("*",))
                is_used = any(applies(one, request, tags) for request, tags in hits)
                reviewed = (role, statement.sid, action) in REVIEWED_UNUSED_ACTIONS
                if is_used and reviewed:
                    stale.append(f"{role} {statement.sid} {action} is reviewed as unused but used")
                elif not is_used and not reviewed:
                    unused.append(f"{role} {statement.sid} {action}")
            for resource in statement.resources:
                one = Statement(statement.sid, "Allow", actions=("*",), resources=(resource,))
                if not any(applies(one, request, tags) for request, tags in hits):
                    unused.append(f"{role} {statement.sid} {resource}")
                for action in statement.actions:
                    pair = Statement(statement.sid, "Allow", actions=(action,), resources=(resource,))
                    if not any(applies(pair, request, tags) for request, tags in hits):
                        pairs.append(f"{role} {statement.sid} {action} on {resource}")
    reviewed = [
        f"{' '.join(key)}: {why}"
        for key, why in {**REVIEWED_UNUSED_STATEMENTS, **REVIEWED_UNUSED_ACTIONS}.items()
    ]
    print("\nallowed, used by no flow, reviewed:", *reviewed, sep="\n  ")
    print("allowed, used by no flow, not reviewed:", *(unused or ["none"]), sep="\n  ")
    # Statements grant actions x resources; not every pair is used (informational, not asserted).
    print("action and resource pairs no flow used:", *(pairs or ["none"]), sep="\n  ")
    assert not unused, (
        "allowed but used by no flow (remove it from infra/template.yaml, or review it here):\n"
        + "\n".join(unused)
    )
    assert not stale, "\n".join(stale)


ROLE_STATEMENTS = [
    (role, statement["Sid"])
    for role, statements in role_statements(load_template()).items()
    for _, statement in statements
]


@pytest.mark.parametrize(("role", "sid"), ROLE_STATEMENTS, ids=[f"{r}-{s}" for r, s in ROLE_STATEMENTS])
def test_removing_any_one_statement_of_a_role_denies_a_recorded_call(recording, role, sid):
    trimmed = template_facts(recording.settings, without_statement(recording.template, role, sid))
    problems = denials(trimmed.principals, recording, only=role)
    if (role, sid) in REVIEWED_UNUSED_STATEMENTS:
        assert not problems, f"{role} {sid} is reviewed as unused but is needed: {problems}"
    else:
        assert problems, f"without {sid}, every call of {role} is still allowed: the statement is not needed"


def test_the_recorder_attributes_calls_to_the_running_function_and_keeps_unattributed_ones(
    stack, monkeypatch
):
    template = load_template()
    facts = template_facts(stack.settings, template)
    rec = CallRecorder(facts)
    rec.install(monkeypatch)

    with rec.started():
        stack.runtime.fire_schedule()  # the update manager's handler, run by the local runtime
        stack.runtime.evaluate_alarms()  # CloudWatch's own work: no role of ours is checked for it
        with rec.acting_as(UPDATE_MANAGER):
            stack.ports.releases.presigned_get("firmware/1.0.0/a.bin", 60)
        stack.clients.s3.list_buckets()  # nobody set a principal

    handler_calls = [c for c in rec.calls if c.principal == UPDATE_MANAGER and c.how == "call"]
    assert {(c.service, c.operation) for c in handler_calls} >= {("dynamodb", "Scan"), ("s3", "PutObject")}
    logs = {(c.operation, c.params["logGroupName"]) for c in rec.calls if c.service == "logs"}
    assert logs == {
        (op, "/aws/lambda/fleetota-local-update-manager") for op in ("CreateLogStream", "PutLogEvents")
    }
    presigned = [c for c in rec.calls if c.how == "presigned URL"]
    assert [(c.principal, c.operation, c.params["Key"]) for c in presigned] == [
        (UPDATE_MANAGER, "GetObject", "firmware/1.0.0/a.bin")
    ]
    aws_work = {(c.service, c.operation) for c in rec.calls if c.principal == AWS_SERVICE}
    assert {("cloudwatch", "PutMetricData"), ("sqs", "GetQueueAttributes")} <= aws_work
    assert rec.calls[-1].principal == UNATTRIBUTED
    problems = denials(facts.principals, Recording(stack.settings, template, facts, rec.checked_calls()))
    assert problems == ["<unattributed> s3:ListBuckets (call): no principal of the template made this call"]
