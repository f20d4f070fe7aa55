"""Continuous campaigns over in-memory fakes: vehicles that match later join, once, crash or not."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from campaign_world import deployments, finish, spec, tick, vehicle, vin, world_with_campaign

from fleetota_core.domain.campaign import CampaignState, TargetFilter, WaveSpec, advance
from fleetota_core.domain.deployment import DeploymentState, Lane, recount
from fleetota_core.domain.enrolment import ChangedVehicle, Enrolment, FleetChangeBatch
from fleetota_core.domain.telemetry import OtaStatus
from fleetota_core.errors import ValidationError
from fleetota_core.services.campaigns.actions import (
    finish_campaign,
    pause_campaign,
    recount_campaign,
    resume_campaign,
)

if TYPE_CHECKING:
    from campaign_fakes import FakeWorld

S = DeploymentState
C = CampaignState


def continuous_world(vehicles: int = 2, **overrides: object) -> tuple[FakeWorld, str]:
    world, campaign = world_with_campaign(vehicles, spec(continuous=True, **overrides))
    return world, campaign.campaign_id


def drained(world: FakeWorld, campaign_id: str) -> None:
    """Every vehicle targeted at creation is notified and succeeds."""
    tick(world)
    finish(world, world.ports.campaign(campaign_id), OtaStatus.SUCCEEDED)
    tick(world, 60)


def provision(world: FakeWorld, n: int, **overrides: object) -> str:
    """A vehicle registered and reporting for the first time: it shows up in the change feed."""
    v = vehicle(n, world.clock.now(), **overrides)
    world.vehicles.put(v)
    world.fleet_changes.written(world.clock.now(), v)
    return v.vin


def counters_match(world: FakeWorld, campaign_id: str) -> bool:
    campaign = world.ports.campaign(campaign_id)
    found = deployments(world, campaign)
    joined = [d.wave for d in found if d.joined_at is not None]
    truth = recount([(d.state, d.wave) for d in found], len(campaign.wave_sizes), joined)
    stored = world.campaigns.rows[campaign_id].counters
    return all(stored.get(key, 0) == count for key, count in truth.items())


def test_a_drained_continuous_campaign_keeps_running_instead_of_completing():
    world, cid = continuous_world()
    drained(world, cid)
    campaign = world.ports.campaign(cid)
    assert campaign.counters.succeeded == 2
    assert campaign.state is C.RUNNING


def test_a_vehicle_provisioned_mid_campaign_joins_the_open_wave_is_notified_and_counts():
    world, cid = continuous_world()
    drained(world, cid)
    new = provision(world, 10)

    result = tick(world, 60)

    assert result.joined == 1
    joined = world.deployments.get(cid, new)
    assert joined is not None and joined.state is S.NOTIFIED and joined.joined_at is not None
    assert world.notifier.notified(new) == 1
    campaign = world.ports.campaign(cid)
    assert (campaign.total, campaign.counters.joined, campaign.summary()["joined_later"]) == (3, 1, 1)
    enrol = [e for e in world.audit.events if e["action"] == "ENROL"]
    assert (
        len(enrol) == 1 and enrol[0]["detail"]["vins"] == [new] and enrol[0]["operator"].startswith("system")
    )
    finish(world, campaign, OtaStatus.SUCCEEDED)
    tick(world, 60)
    assert world.ports.campaign(cid).counters.succeeded == 3
    assert counters_match(world, cid)


def test_a_vehicle_that_reaches_the_source_version_joins():
    world, cid = continuous_world(2, target=TargetFilter(current_versions=("1.0.0",)))
    drained(world, cid)
    old = vehicle(20, world.clock.now(), firmware_version="0.9.0")
    world.vehicles.put(old)
    world.fleet_changes.written(world.clock.now(), old)
    assert tick(world, 60).joined == 0  # on 0.9.0 the filter does not match it

    updated = old.model_copy(update={"firmware_version": "1.0.0"})
    world.vehicles.put(updated)
    world.fleet_changes.written(world.clock.now(), updated)
    assert tick(world, 60).joined == 1
    assert world.notifier.notified(old.vin) == 1


def test_targeted_updated_and_already_current_vehicles_never_join_twice():
    world, cid = continuous_world()
    drained(world, cid)
    campaign = world.ports.campaign(cid)
    # Readings of the vehicles it already has, and one that already runs the release.
    for _ in range(3):
        world.fleet_changes.written(world.clock.now(), *world.vehicles.all())
        world.fleet_changes.written(
            world.clock.now(), vehicle(30, world.clock.now(), firmware_version="2.0.0")
        )
        tick(world, 60)

    assert world.enrolments.attempts == []
    assert world.ports.campaign(cid).total == campaign.total == 2
    assert all(world.notifier.notified(vin(n)) == 1 for n in range(2))


def test_every_reading_of_a_member_costs_one_deployment_read_per_process_not_one_per_tick():
    world, cid = continuous_world(3)
    tick(world)  # notified, not yet updated: they still fit the first look
    looked: list[list[str]] = []
    get_many = world.deployments.get_many

    def counted(campaign_id, vins):
        looked.append(list(vins))
        return get_many(campaign_id, vins)

    world.deployments.get_many = counted
    for _ in range(3):  # each vehicle reports twice a tick; every reading is in the feed
        world.fleet_changes.written(world.clock.now(), *world.vehicles.all())
        world.fleet_changes.written(world.clock.now(), *world.vehicles.all())
        tick(world, 60)

    # The first tick reads the members once; later ticks know them (nothing else in flight was due).
    assert [sorted(vins) for vins in looked] == [sorted(vin(n) for n in range(3))]
    assert world.ports.campaign(cid).total == 3


def test_the_region_is_the_registrys_not_the_one_the_feed_derived_from_the_position():
    world, cid = continuous_world(2, target=TargetFilter(regions=("us-west",)))
    drained(world, cid)
    new = vehicle(21, world.clock.now())  # the directory (registry) says us-west
    world.vehicles.put(new)
    seen = ChangedVehicle(new.vin, new.model, new.hw_rev, "us-east", new.firmware_version)
    world.fleet_changes.batches.append(FleetChangeBatch(f"{world.clock.now().isoformat()}#z", [seen]))

    assert tick(world, 60).joined == 1
    assert world.notifier.notified(new.vin) == 1


def test_the_registry_has_the_last_word_on_who_joins():
    world, cid = continuous_world()
    drained(world, cid)
    # The feed names a vehicle the directory does not hold as an active registered vehicle.
    ghost = vehicle(40, world.clock.now())
    world.fleet_changes.written(world.clock.now(), ghost)
    assert tick(world, 60).joined == 0
    assert world.deployments.get(cid, ghost.vin) is None


def test_a_paused_campaign_takes_joiners_but_notifies_them_only_after_resume():
    world, cid = continuous_world()
    drained(world, cid)
    pause_campaign(cid, "alice", "hold", world.ports)
    new = provision(world, 11)

    assert tick(world, 60).joined == 1
    assert world.deployments.get(cid, new).state is S.PENDING
    assert world.notifier.notified(new) == 0

    resume_campaign(cid, "alice", "go", world.ports)
    tick(world, 60)
    assert world.notifier.notified(new) == 1


def test_a_tick_that_dies_after_a_vehicle_joined_neither_loses_nor_duplicates_it():
    world, cid = continuous_world()
    drained(world, cid)
    watermark = world.ports.campaign(cid).enrolment_watermark
    new = provision(world, 12)

    def crash(_):
        world.enrolments.after_enrol = None
        raise RuntimeError("the tick died between the join and its hint")

    world.enrolments.after_enrol = crash
    with pytest.raises(RuntimeError):
        tick(world, 60)
    assert world.deployments.get(cid, new).state is S.PENDING
    assert world.schedule.of(cid, Lane.WAIT, new) == []  # no hint yet
    assert world.ports.campaign(cid).enrolment_watermark == watermark  # the batch is read again

    result = tick(world, 60)

    assert result.joined == 0  # it had joined already
    assert world.enrolments.attempts == [new]
    assert world.notifier.notified(new) == 1
    assert world.ports.campaign(cid).counters.joined == 1
    assert counters_match(world, cid)


def test_a_vehicle_another_tick_enrolled_meanwhile_gets_its_hint_and_one_notice():
    world, cid = continuous_world()
    drained(world, cid)
    new = provision(world, 19)
    enrol = world.enrolments.enrol

    def another_tick_got_there_first(deployment):
        enrol(deployment)  # that tick then died before filing the hint
        return Enrolment.ALREADY

    world.enrolments.enrol = another_tick_got_there_first
    result = tick(world, 60)

    assert result.joined == 0
    assert world.notifier.notified(new) == 1
    assert world.ports.campaign(cid).counters.joined == 1
    assert counters_match(world, cid)


def test_a_continuous_campaign_completes_after_finish_and_takes_nobody_after_it():
    world, cid = continuous_world()
    drained(world, cid)
    new = provision(world, 13)
    tick(world, 60)

    finish_campaign(cid, "alice", "release superseded", world.ports)
    late = provision(world, 14)
    tick(world, 60)
    assert world.deployments.get(cid, late) is None
    assert world.ports.campaign(cid).state is C.RUNNING  # the joiner is still in flight
    finish(world, world.ports.campaign(cid), OtaStatus.SUCCEEDED)
    tick(world, 60)

    campaign = world.ports.campaign(cid)
    assert campaign.state is C.COMPLETED
    assert world.deployments.get(cid, new).state is S.SUCCEEDED
    assert "FINISH" in world.audit.actions(cid)
    with pytest.raises(ValidationError, match="already finished"):
        finish_campaign(cid, "alice", "again", world.ports)


def test_finish_is_refused_for_a_campaign_that_is_not_continuous():
    world, campaign = world_with_campaign(2, spec())
    with pytest.raises(ValidationError, match="not continuous"):
        finish_campaign(campaign.campaign_id, "alice", "done", world.ports)


def test_a_campaign_that_is_not_continuous_never_reads_the_feed_and_completes():
    world, campaign = world_with_campaign(2, spec())
    provision(world, 15)
    tick(world)
    finish(world, world.ports.campaign(campaign.campaign_id), OtaStatus.SUCCEEDED)
    tick(world, 60)
    assert world.ports.campaign(campaign.campaign_id).state is C.COMPLETED
    assert world.enrolments.attempts == [] and world.fleet_changes.whole_reads == 0


def test_a_feed_that_lost_the_watermark_is_replaced_by_one_read_of_the_whole_fleet():
    world, cid = continuous_world()
    drained(world, cid)
    new = vehicle(16, world.clock.now())
    world.vehicles.put(new)  # its change fell out of the feed's retention
    world.fleet_changes.horizon = world.fleet_changes.token(world.clock.advance(3600))

    assert tick(world, 60).joined == 1
    assert world.fleet_changes.whole_reads == 1
    tick(world, 60)
    assert world.fleet_changes.whole_reads == 1  # the watermark is back inside the feed
    assert world.notifier.notified(new.vin) == 1


def test_a_continuous_campaign_may_start_with_no_vehicle_and_fill_later():
    world, campaign = world_with_campaign(
        1, spec(continuous=True, target=TargetFilter(regions=("eu-north",)), waves=(WaveSpec(percent=100),))
    )
    assert campaign.total == 0
    tick(world)
    new = provision(world, 17, region="eu-north")
    tick(world, 60)
    assert world.notifier.notified(new) == 1


def test_a_rollback_campaign_cannot_be_continuous():
    with pytest.raises(ValueError, match="rollback campaign cannot be continuous"):
        spec(continuous=True, kind="rollback")


def test_recount_rebuilds_the_joined_counters():
    world, cid = continuous_world()
    drained(world, cid)
    provision(world, 18)
    tick(world, 60)
    world.campaigns.rows[cid].counters.clear()
    recount_campaign(cid, "alice", "repair", world.ports)
    assert world.ports.campaign(cid).counters.joined == 1
    assert counters_match(world, cid)


def test_advance_never_completes_a_campaign_that_is_still_enrolling():
    world, cid = continuous_world()
    drained(world, cid)
    progress = world.ports.campaign(cid).progress()
    assert advance(progress, world.ports.campaign(cid).spec, world.clock.now()).state is C.RUNNING
    closed = progress.__class__(**{**progress.__dict__, "enrolling": False})
    assert advance(closed, world.ports.campaign(cid).spec, world.clock.now()).state is C.COMPLETED
