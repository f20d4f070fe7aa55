"""End to end on the local stack: simulated vehicles, real telemetry pipeline, real update ticks.

Time is simulated: each step is one minute of fleet time (one telemetry reading per vehicle),
followed by draining the telemetry queue through the Lambda handler and one update-manager tick.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest

from fleetota_core.adapters.telemetry_store import TelemetryStore
from fleetota_core.domain.campaign import AbortCriteria, CampaignSpec, CampaignState, TargetFilter, WaveSpec
from fleetota_core.domain.deployment import DeploymentState, RetryPolicy
from fleetota_core.domain.eligibility import EligibilityRules
from fleetota_core.domain.job_document import SignedJobDocument
from fleetota_core.domain.telemetry import NetworkType
from fleetota_core.errors import ValidationError
from fleetota_core.services.campaigns.actions import rollback_campaign
from fleetota_core.services.campaigns.create import create_campaign, get_campaign, list_deployments
from fleetota_core.services.campaigns.releases import publish_release
from fleetota_core.services.campaigns.tick import run_tick
from fleetota_core.services.ingest.fleet_health import refresh_fleet
from simulator.fleet import generate_fleet
from simulator.job_listener import open_job_listener
from simulator.ota_client import OtaFaults
from simulator.simulation import FleetSimulation
from simulator.uploader import BatchUploader, S3Sink
from simulator.vehicle_keys import register_fleet

pytestmark = pytest.mark.slow


def recent_wednesday(hour: int) -> datetime:
    """``hour``:00 UTC on the Wednesday of last week: the processor stores only readings inside the raw
    retention (365 days), so a fixed date would start failing a year after it was written."""
    day = (datetime.now(UTC) - timedelta(days=7)).replace(hour=hour, minute=0, second=0, microsecond=0)
    return day - timedelta(days=(day.weekday() - 2) % 7)


# 03:00 UTC on a Wednesday: evening in the US metros, night in Europe; most cars are parked.
START = recent_wednesday(3)
ARTIFACT = bytes(range(256)) * 512  # 128 KiB
NEW = "3.5.0"
# Lenient rules for tests about other things: any connection, driving or not.
ANY_TIME = EligibilityRules(
    min_soc_pct=20, require_parked=False, networks=tuple(NetworkType)[:-1], min_signal_dbm=-140
)


@dataclass
class OtaWorld:
    stack: object
    sim: FleetSimulation
    listener: object
    notifications: Counter = field(default_factory=Counter)

    @property
    def now(self) -> datetime:
        return datetime.fromtimestamp(self.sim.t, UTC)

    def step(self, tick: bool = True) -> None:
        if tick:
            # As the update manager's handler does: the fleet snapshot first (last seen, since the
            # vehicles table takes material changes only), its deltas settled by the wall clock.
            # Its metrics are EMF lines on stdout, forwarded as the runtime does for the handler.
            with self.stack.runtime.emf_forwarded():
                refresh_fleet(
                    self.stack.clients, self.stack.resources, now=datetime.now(UTC) + timedelta(seconds=31)
                )
                run_tick(self.stack.ports, self.now)
        self.listener.poll()
        self.sim.step()
        self.stack.runtime.drain(timeout=60)

    def run(self, campaign_id: str, minutes: int) -> object:
        for _ in range(minutes):
            self.step()
            campaign = get_campaign(campaign_id, self.stack.ports)
            if campaign.state in (CampaignState.COMPLETED, CampaignState.ABORTED, CampaignState.PAUSED):
                return campaign
        return get_campaign(campaign_id, self.stack.ports)


def world(
    stack, vehicles: int, faults: OtaFaults, seed: int = 11, start: datetime = START, interval: float = 60.0
) -> OtaWorld:
    fleet = generate_fleet(vehicles, seed)
    for v in fleet:
        v.soc = max(v.soc, 60.0)  # deferral is tested on its own; here every car has charge
    register_fleet(stack.clients, stack.resources, fleet)  # provisioned, each with its own key
    uploader = BatchUploader(
        S3Sink(TelemetryStore(stack.resources.telemetry_bucket, stack.clients.s3)), 1000, "t"
    )
    sim = FleetSimulation(fleet, uploader, start=start.timestamp(), interval=interval, seed=seed)
    listener = open_job_listener(stack.clients, stack.resources, f"t{seed}", faults, seed=seed, install_s=60)
    sim.ota_client = listener
    w = OtaWorld(stack, sim, listener)
    w.step(tick=False)  # first readings: the vehicles table learns the fleet
    return w


def publish(stack, version: str, models, body: bytes = ARTIFACT):
    return publish_release(body, version, models, [], None, "e2e", "alice", stack.ports)


def fleet_models(w: OtaWorld) -> list[str]:
    return sorted({v.model for v in w.sim.vehicles})


def latest_metric(stack, name: str, dims: dict[str, str], stat: str = "Average") -> float | None:
    """The newest minute's statistic; a cumulative counter (ticks publish it several times a
    simulated minute) wants ``Maximum``, its latest value."""
    wall = datetime.now(UTC)
    result = stack.clients.cloudwatch.get_metric_data(
        MetricDataQueries=[
            {
                "Id": "m",
                "MetricStat": {
                    "Metric": {
                        "Namespace": "OTAUpdates",
                        "MetricName": name,
                        "Dimensions": [{"Name": k, "Value": v} for k, v in dims.items()],
                    },
                    "Period": 60,
                    "Stat": stat,
                },
            }
        ],
        StartTime=wall - timedelta(minutes=30),
        EndTime=wall + timedelta(minutes=5),
        ScanBy="TimestampDescending",
    )["MetricDataResults"][0]
    return result["Values"][0] if result["Values"] else None


def test_a_healthy_campaign_with_transient_failures_completes_and_the_metrics_agree(stack):
    w = world(stack, 200, OtaFaults(install_failure_rate=0.10))
    publish(stack, NEW, fleet_models(w))
    spec = CampaignSpec(
        name="healthy",
        release_version=NEW,
        waves=(
            WaveSpec(percent=10, success_threshold_pct=80, error_threshold_pct=10),
            WaveSpec(percent=30, success_threshold_pct=80, error_threshold_pct=10),
            WaveSpec(percent=60, success_threshold_pct=80, error_threshold_pct=10),
        ),
        retry=RetryPolicy(max_attempts=5, backoff_base_s=30),
        eligibility=ANY_TIME,
        defer_recheck_s=60,
        max_in_flight=200,
    )
    campaign = create_campaign(spec, "alice", stack.ports, "e2e", now=w.now)
    assert campaign.total == 200
    done = w.run(campaign.campaign_id, minutes=90)
    assert done.state is CampaignState.COMPLETED, done.summary()
    rows = list_deployments(campaign.campaign_id, stack.ports)
    states = Counter(r.state for r in rows)
    assert states[DeploymentState.SUCCEEDED] == 200
    assert max(r.attempt for r in rows) > 1  # failures happened and were retried
    assert w.listener.client.stats["FAILED"] > 0
    assert done.counters.success_rate() == pytest.approx(
        100.0 * states[DeploymentState.SUCCEEDED] / len(rows)
    )
    metric = latest_metric(stack, "SuccessRate", {"CampaignId": campaign.campaign_id})
    assert metric == pytest.approx(done.counters.success_rate())
    assert all(v.firmware_version == NEW for v in w.sim.vehicles)
    # One notification per vehicle and attempt, however many ticks ran.
    assert set(w.listener.client.notified.values()) == {1}


def test_forty_percent_permanent_failures_pause_wave_one_and_alert(stack):
    w = world(stack, 100, OtaFaults(permanent_failure_rate=0.40), seed=12)
    publish(stack, NEW, fleet_models(w))
    alerts_url = stack.clients.sqs.create_queue(QueueName="alerts-probe")["QueueUrl"]
    arn = stack.clients.sqs.get_queue_attributes(QueueUrl=alerts_url, AttributeNames=["QueueArn"])
    stack.clients.sns.subscribe(
        TopicArn=stack.resources.alerts_topic_arn, Protocol="sqs", Endpoint=arn["Attributes"]["QueueArn"]
    )
    spec = CampaignSpec(
        name="bad build",
        release_version=NEW,
        waves=(WaveSpec(percent=20, error_threshold_pct=15), WaveSpec(percent=80)),
        abort=AbortCriteria(failure_pct=90, min_executed=50),
        eligibility=ANY_TIME,
        max_in_flight=100,
    )
    campaign = create_campaign(spec, "alice", stack.ports, now=w.now)
    done = w.run(campaign.campaign_id, minutes=30)
    assert done.state is CampaignState.PAUSED
    assert done.current_wave == 0 and "wave 1" in done.state_reason
    rows = list_deployments(campaign.campaign_id, stack.ports)
    later = [r for r in rows if r.wave > 0]
    assert later and all(r.state is DeploymentState.PENDING and r.attempt == 0 for r in later)
    later_vins = {r.vin for r in later}
    for _ in range(3):  # paused: further ticks notify nobody in wave 2
        w.step()
    assert not later_vins & set(w.listener.client.pending)
    messages = stack.clients.sqs.receive_message(QueueUrl=alerts_url, MaxNumberOfMessages=10)["Messages"]
    bodies = [json.loads(json.loads(m["Body"])["Message"]) for m in messages]
    assert any(b["event"] == "AUTO_PAUSED" and b["campaign_id"] == campaign.campaign_id for b in bodies)


def test_a_tampered_artifact_is_rejected_by_every_vehicle_and_installed_by_none(stack):
    w = world(stack, 30, OtaFaults(), seed=13)
    release = publish(stack, NEW, fleet_models(w))
    # An attacker swaps the artifact in the bucket after it was signed.
    tampered = bytearray(ARTIFACT)
    tampered[1000] ^= 0xFF
    stack.clients.s3.put_object(
        Bucket=stack.resources.firmware_bucket, Key=release.manifest.artifact_key, Body=bytes(tampered)
    )
    before = {v.vin: v.firmware_version for v in w.sim.vehicles}
    spec = CampaignSpec(
        name="tampered",
        release_version=NEW,
        max_in_flight=100,
        eligibility=ANY_TIME,
        waves=(WaveSpec(percent=100, error_threshold_pct=100),),
        abort=AbortCriteria(failure_pct=100, min_executed=1000),
    )
    campaign = create_campaign(spec, "alice", stack.ports, now=w.now)
    done = w.run(campaign.campaign_id, minutes=15)
    rows = list_deployments(campaign.campaign_id, stack.ports)
    assert {r.state for r in rows} == {DeploymentState.REJECTED}
    assert {r.error_code for r in rows} == {"CHECKSUM_MISMATCH"}
    assert done.state is CampaignState.COMPLETED and done.counters.succeeded == 0
    assert {v.vin: v.firmware_version for v in w.sim.vehicles} == before


def forge_job_documents(stack, downgrade_to) -> int:
    """An attacker with bucket access rewrites every job document into a downgrade, keeping the signature."""
    s3, bucket = stack.clients.s3, stack.resources.firmware_bucket
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix="jobs/").get("Contents", [])]
    for key in keys:
        signed = SignedJobDocument.model_validate_json(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
        forged_doc = signed.document.model_copy(update={"release": downgrade_to, "allow_downgrade": True})
        forged = signed.model_copy(update={"document": forged_doc})
        s3.put_object(Bucket=bucket, Key=key, Body=forged.model_dump_json().encode())
    return len(keys)


def test_downgrades_are_refused_but_a_rollback_campaign_succeeds(stack):
    w = world(stack, 20, OtaFaults(), seed=14)
    models = fleet_models(w)
    on_341 = [v for v in w.sim.vehicles if v.firmware_version == "3.4.1"]
    assert on_341
    publish(stack, "3.4.1", models)
    publish(stack, NEW, models)
    old = publish(stack, "3.0.0", models, body=b"old" * 1000)
    target = TargetFilter(current_versions=("3.4.1",))
    # A plain downgrade is refused when the campaign is created...
    with pytest.raises(ValidationError, match=r"newer than 3\.0\.0"):
        create_campaign(
            CampaignSpec(name="plain", release_version="3.0.0", target=target),
            "mallory",
            stack.ports,
            now=w.now,
        )
    # ...and a forged one (job documents rewritten in the bucket) is refused by every vehicle.
    lenient = (WaveSpec(percent=100, error_threshold_pct=100),)
    forged = create_campaign(
        CampaignSpec(
            name="forged",
            release_version=NEW,
            eligibility=ANY_TIME,
            target=target,
            waves=lenient,
            abort=AbortCriteria(failure_pct=100, min_executed=1000),
        ),
        "alice",
        stack.ports,
        now=w.now,
    )
    run_tick(stack.ports, w.now)
    assert forge_job_documents(stack, old) == len(on_341)
    for _ in range(3):
        w.step(tick=False)
    rows = list_deployments(forged.campaign_id, stack.ports)
    assert {r.state for r in rows} == {DeploymentState.REJECTED}
    assert {r.error_code for r in rows} == {"BAD_SIGNATURE"}
    assert all(v.firmware_version == "3.4.1" for v in on_341)
    # The real update, then its rollback, whose signed job documents allow the downgrade.
    update = create_campaign(
        CampaignSpec(name="upgrade", release_version=NEW, eligibility=ANY_TIME, target=target),
        "alice",
        stack.ports,
        now=w.now,
    )
    assert w.run(update.campaign_id, minutes=15).state is CampaignState.COMPLETED
    assert all(v.firmware_version == NEW for v in on_341)
    w.step(tick=False)  # the vehicles table learns the new versions
    rollback = rollback_campaign(update.campaign_id, "alice", "regression in 3.5.0", stack.ports, now=w.now)
    done = w.run(rollback.campaign_id, minutes=15)
    assert done.state is CampaignState.COMPLETED and done.counters.succeeded == len(on_341)
    assert all(v.firmware_version == "3.4.1" for v in on_341)


def test_low_battery_and_driving_vehicles_are_deferred_with_reasons_then_notified_once_they_qualify(stack):
    # 14:00 UTC on a weekday; after twenty minutes some cars are on the road.
    w = world(stack, 40, OtaFaults(), seed=15, start=recent_wednesday(14))
    for _ in range(20):
        w.step(tick=False)
    publish(stack, NEW, fleet_models(w))
    low = [v for v in w.sim.vehicles if not v.driving][:3]
    for v in low:
        v.soc = 18.0
    w.step(tick=False)
    assert any(v.driving for v in w.sim.vehicles)
    rules = EligibilityRules(
        min_soc_pct=30, charging_overrides_soc=False, networks=ANY_TIME.networks, min_signal_dbm=-140
    )
    spec = CampaignSpec(
        name="deferral", release_version=NEW, defer_recheck_s=60, eligibility=rules, max_in_flight=100
    )
    campaign = create_campaign(spec, "alice", stack.ports, now=w.now)
    w.step()
    rows = {r.vin: r for r in list_deployments(campaign.campaign_id, stack.ports)}
    for v in low:
        assert rows[v.vin].state is DeploymentState.DEFERRED
        assert rows[v.vin].reason == "battery 18% < 30%"
    driving = [vin for vin, r in rows.items() if (r.reason or "").startswith("driving at")]
    assert driving, (
        Counter(r.reason or r.state for r in rows.values()),
        sum(v.driving for v in w.sim.vehicles),
    )
    assert not {vin for vin, _ in w.listener.client.notified} & (set(driving) | {v.vin for v in low})
    for v in low:
        v.soc = 80.0  # plugged in and charged
    done = w.run(campaign.campaign_id, minutes=90)
    assert done.state is CampaignState.COMPLETED, done.summary()
    assert all(w.sim.by_vin[vin].firmware_version == NEW for vin in [*driving, *(v.vin for v in low)])
    # Each vehicle got exactly one notification: deferral never sends one.
    assert sorted(w.listener.client.notified.values()) == [1] * done.total
    assert {vin for vin, _ in w.listener.client.notified} == set(rows)
