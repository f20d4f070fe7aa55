"""The continuous-campaign adapters on the local stack: the joining transaction and the change feed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from fleetota_core.adapters.campaign_enrolment import CampaignEnrolment
from fleetota_core.adapters.fleet_changes import SnapshotDeltaFeed, token_time
from fleetota_core.adapters.fleet_snapshot import write_delta, write_fleet_snapshot
from fleetota_core.domain.campaign import CampaignSpec
from fleetota_core.domain.deployment import Deployment, DeploymentState
from fleetota_core.domain.enrolment import Enrolment
from fleetota_core.services.campaigns.actions import finish_campaign
from fleetota_core.services.campaigns.create import create_campaign, get_campaign
from fleetota_core.services.campaigns.tick import run_tick
from tests.integration.test_campaign_services import MODEL, NOW, publish, seed_vehicles, vin

SETTLE, RETENTION = timedelta(seconds=30), timedelta(hours=1)


def running_continuous_campaign(stack) -> str:
    seed_vehicles(stack, 2)
    publish(stack)
    spec = CampaignSpec(name="continuous", release_version="2.0.0", continuous=True)
    campaign = create_campaign(spec, "alice", stack.ports, now=NOW)
    run_tick(stack.ports, NOW)  # it starts
    return campaign.campaign_id


def joiner(campaign_id: str, n: int) -> Deployment:
    return Deployment(
        campaign_id=campaign_id,
        vin=vin(n),
        wave=0,
        state=DeploymentState.PENDING,
        next_action_at=NOW,
        model=MODEL,
        hw_rev="HW4",
        from_version="1.0.0",
        created_at=NOW,
        joined_at=NOW,
    )


def test_a_vehicle_joins_once_with_its_counters_and_not_after_finish(stack):
    cid = running_continuous_campaign(stack)
    enrolment = CampaignEnrolment(
        stack.clients.dynamodb, stack.resources.campaigns_table, stack.resources.deployments_table
    )
    before = get_campaign(cid, stack.ports)

    assert enrolment.enrol(joiner(cid, 50)) is Enrolment.JOINED
    assert enrolment.enrol(joiner(cid, 50)) is Enrolment.ALREADY
    assert enrolment.enrol(joiner(cid, 0)) is Enrolment.ALREADY  # targeted at creation

    after = get_campaign(cid, stack.ports)
    assert after.counters.count("PENDING") == before.counters.count("PENDING") + 1
    assert after.counters.wave_waiting[0] == before.counters.wave_waiting[0] + 1
    assert (after.counters.joined, after.total) == (1, before.total + 1)
    stored = stack.ports.deployments.get(cid, vin(50))
    assert stored is not None and stored.joined_at == NOW and stored.state is DeploymentState.PENDING

    finish_campaign(cid, "alice", "done", stack.ports)
    assert enrolment.enrol(joiner(cid, 51)) is Enrolment.CLOSED
    assert stack.ports.deployments.get(cid, vin(51)) is None
    assert get_campaign(cid, stack.ports).counters.joined == 1


def test_the_watermark_only_moves_forward(stack):
    cid = running_continuous_campaign(stack)
    enrolment = CampaignEnrolment(
        stack.clients.dynamodb, stack.resources.campaigns_table, stack.resources.deployments_table
    )
    first = get_campaign(cid, stack.ports).enrolment_watermark
    assert token_time(first) is not None  # taken at creation
    enrolment.move_watermark(cid, first + "b")
    enrolment.move_watermark(cid, first + "a")
    assert get_campaign(cid, stack.ports).enrolment_watermark == first + "b"


def feed(stack, now: datetime) -> SnapshotDeltaFeed:
    return SnapshotDeltaFeed(
        stack.clients.s3,
        stack.resources.telemetry_bucket,
        SETTLE,
        RETENTION,
        stack.clients.dynamodb,
        stack.resources.vehicles_table,
        clock=lambda: now,
    )


def row(version: str) -> dict:
    return {"model": MODEL, "hw_rev": "HW4", "region": "us-west", "firmware_version": version}


def test_the_feed_reads_settled_deltas_in_order_and_gives_up_past_their_retention(stack):
    s3, bucket = stack.clients.s3, stack.resources.telemetry_bucket
    now = datetime.now(UTC)
    start = feed(stack, now - timedelta(minutes=10)).start()
    older = write_delta(s3, bucket, {vin(1): row("1.0.0")}, now - timedelta(minutes=5))
    newer = write_delta(s3, bucket, {vin(2): row("1.1.0"), vin(3): row("1.0.0")}, now - timedelta(minutes=1))
    unsettled = write_delta(s3, bucket, {vin(4): row("1.0.0")}, now - timedelta(seconds=5))

    batches = feed(stack, now).since(start, 200)

    assert [b.token for b in batches] == [older, newer]  # the unsettled one waits for a later tick
    assert [[c.vin for c in b.vehicles] for b in batches] == [[vin(1)], [vin(2), vin(3)]]
    assert batches[1].vehicles[0].firmware_version == "1.1.0"
    assert [b.token for b in feed(stack, now).since(start, 1)] == [older]
    assert [b.token for b in feed(stack, now + timedelta(minutes=1)).since(newer, 200)] == [unsettled]
    # An hour on, the deltas after ``start`` may be deleted: the caller must read the whole fleet.
    assert feed(stack, now + RETENTION).since(start, 200) is None
    assert feed(stack, now).since("", 200) is None


def test_the_whole_fleet_comes_from_the_snapshot_and_carries_on_from_its_high_water(stack):
    s3, bucket = stack.clients.s3, stack.resources.telemetry_bucket
    now = datetime.now(UTC)
    seed_vehicles(stack, 3)
    # Before any snapshot: the vehicles table, from now on.
    whole = feed(stack, now).whole_fleet()
    assert sorted(c.vin for c in whole.vehicles) == sorted(vin(n) for n in range(3))
    assert whole.token == feed(stack, now).start()

    high_water = write_delta(s3, bucket, {vin(9): row("1.0.0")}, now - timedelta(minutes=2))
    write_fleet_snapshot(s3, bucket, {vin(7): row("1.0.0")}, now, high_water, now)
    whole = feed(stack, now).whole_fleet()
    assert (whole.token, [c.vin for c in whole.vehicles]) == (high_water, [vin(7)])
