"""The update-manager tick over in-memory fakes with an injected clock: every rollout rule, in ms."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

from campaign_fakes import FakeWorld
from campaign_world import (
    MODEL,
    deployments,
    finish,
    report,
    spec,
    tick,
    vehicle,
    window,
    world_with_campaign,
)

from fleetota_core.domain.campaign import AbortCriteria, CampaignState, WaveSpec
from fleetota_core.domain.deployment import DeploymentState, Lane, RetryPolicy, recount, state_count
from fleetota_core.domain.telemetry import OtaStatus
from fleetota_core.services.campaigns.tick import run_tick
from fleetota_core.services.campaigns.tick_inflight import NOTICE_LEASE

S = DeploymentState
C = CampaignState


def counters_match_deployments(world: FakeWorld, campaign_id: str) -> bool:
    campaign = world.ports.campaign(campaign_id)
    truth = recount([(d.state, d.wave) for d in deployments(world, campaign)], len(campaign.wave_sizes))
    stored = world.campaigns.rows[campaign_id].counters
    return all(stored.get(key, 0) == count for key, count in truth.items())


# Healthy rollout ---------------------------------------------------------------------------------


def test_a_healthy_rollout_opens_each_wave_after_the_last_one_succeeds_and_then_completes() -> None:
    world, campaign = world_with_campaign(20, spec(waves=(WaveSpec(percent=25), WaveSpec(percent=75))))

    first = tick(world)
    assert first.notified == 5
    assert world.ports.campaign(campaign.campaign_id).state is C.RUNNING
    assert {d.wave for d in deployments(world, campaign, S.NOTIFIED)} == {0}

    assert finish(world, campaign, OtaStatus.SUCCEEDED) == 5
    tick(world, 10)  # wave 1 reached its success threshold: wave 2 opens at the end of this tick
    assert world.ports.campaign(campaign.campaign_id).current_wave == 1
    assert tick(world, 10).notified == 15

    finish(world, campaign, OtaStatus.SUCCEEDED)
    tick(world, 10)
    done = world.ports.campaign(campaign.campaign_id)
    assert done.state is C.COMPLETED
    assert done.counters.succeeded == 20 and done.counters.in_flight == 0
    assert world.audit.actions(campaign.campaign_id) == ["CREATE", "STARTED", "WAVE_STARTED", "COMPLETED"]
    assert [subject for subject, _ in world.notifier.alerts] == [
        f"FleetOTA campaign {campaign.campaign_id} COMPLETED"
    ]
    assert all(world.notifier.notified(d.vin) == 1 for d in deployments(world, campaign))
    assert counters_match_deployments(world, campaign.campaign_id)


def test_each_tick_publishes_in_progress_and_success_rate_for_the_campaign() -> None:
    world, campaign = world_with_campaign(4, spec())
    tick(world)
    finish(world, campaign, OtaStatus.SUCCEEDED)
    tick(world, 5)
    data, _ = world.metrics.published[-1]
    by_name = {(name, tuple(dims.items())): value for name, value, _, dims in data}
    assert by_name[("SuccessRate", (("CampaignId", campaign.campaign_id),))] == 100.0
    assert by_name[("InProgress", ())] == 0


# Thresholds --------------------------------------------------------------------------------------


def test_a_wave_at_exactly_its_error_threshold_keeps_going_and_one_more_failure_pauses_it() -> None:
    waves = (WaveSpec(size=10, error_threshold_pct=10, success_threshold_pct=50), WaveSpec(percent=100))
    world, campaign = world_with_campaign(20, spec(waves=waves))
    tick(world)
    notified = deployments(world, campaign, S.NOTIFIED)
    report(world, notified[0], OtaStatus.FAILED, "INSTALL_ERROR")
    tick(world, 5)
    assert world.ports.campaign(campaign.campaign_id).state is C.RUNNING  # 10% is not above 10%

    report(world, notified[1], OtaStatus.FAILED, "INSTALL_ERROR")
    tick(world, 5)
    paused = world.ports.campaign(campaign.campaign_id)
    assert paused.state is C.PAUSED
    assert "2 of 10 failed (20.0% > error threshold 10%)" in paused.state_reason


def test_the_error_threshold_is_checked_before_the_success_threshold() -> None:
    waves = (WaveSpec(size=10, error_threshold_pct=10, success_threshold_pct=50), WaveSpec(percent=100))
    world, campaign = world_with_campaign(20, spec(waves=waves))
    tick(world)
    notified = deployments(world, campaign, S.NOTIFIED)
    for d in notified[:8]:
        report(world, d, OtaStatus.SUCCEEDED)
    for d in notified[8:]:
        report(world, d, OtaStatus.FAILED, "INSTALL_ERROR")

    result = tick(world, 5)
    assert world.ports.campaign(campaign.campaign_id).state is C.PAUSED  # 80% success, but 20% failed
    assert result.notified == 0
    assert not deployments(world, campaign, S.NOTIFIED)  # no vehicle of wave 2 was told anything


def test_a_paused_campaign_notifies_nobody_but_its_in_flight_deployments_still_finish() -> None:
    world, campaign = world_with_campaign(6, spec(max_in_flight=3))
    tick(world)
    from fleetota_core.services.campaigns.actions import pause_campaign

    pause_campaign(campaign.campaign_id, "bob", "look first", world.ports)
    finish(world, campaign, OtaStatus.SUCCEEDED)
    assert tick(world, 5).notified == 0
    paused = world.ports.campaign(campaign.campaign_id)
    assert paused.state is C.PAUSED and paused.counters.succeeded == 3


# Abort -------------------------------------------------------------------------------------------


def test_the_campaign_aborts_on_its_failure_percentage_only_once_enough_have_executed() -> None:
    abort = AbortCriteria(failure_pct=50, min_executed=4)
    waves = (WaveSpec(percent=100, error_threshold_pct=100),)
    world, campaign = world_with_campaign(8, spec(abort=abort, waves=waves))
    tick(world)
    notified = deployments(world, campaign, S.NOTIFIED)
    for d in notified[:3]:
        report(world, d, OtaStatus.FAILED, "INSTALL_ERROR")
    tick(world, 5)
    assert world.ports.campaign(campaign.campaign_id).state is C.RUNNING  # 3 executed < minimum 4

    report(world, notified[3], OtaStatus.FAILED, "INSTALL_ERROR")
    tick(world, 5)
    aborted = world.ports.campaign(campaign.campaign_id)
    assert aborted.state is C.ABORTED
    assert "failure rate 100.0% >= 50% after 4 executed" in aborted.state_reason
    assert any("AUTO_ABORTED" in subject for subject, _ in world.notifier.alerts)


# In-flight cap -----------------------------------------------------------------------------------


def test_no_more_than_max_in_flight_vehicles_are_notified_and_a_finished_one_frees_a_slot() -> None:
    world, campaign = world_with_campaign(10, spec(max_in_flight=3))
    assert tick(world).notified == 3
    assert tick(world, 5).notified == 0
    report(world, deployments(world, campaign, S.NOTIFIED)[0], OtaStatus.SUCCEEDED)
    assert tick(world, 5).notified == 1
    assert world.ports.campaign(campaign.campaign_id).counters.in_flight == 3


# Timeouts and retries ----------------------------------------------------------------------------


def test_a_deployment_with_no_result_times_out_at_its_deadline_and_not_before() -> None:
    world, campaign = world_with_campaign(1, spec(in_progress_timeout_s=600))
    tick(world)
    assert tick(world, 599).timed_out == 0
    result = tick(world, 2)
    assert result.timed_out == 1
    [timed_out] = deployments(world, campaign)
    assert timed_out.state is S.TIMED_OUT and timed_out.error_code == "TIMED_OUT"


def test_a_timed_out_deployment_is_retried_after_its_backoff_when_attempts_remain() -> None:
    retry = RetryPolicy(max_attempts=2, backoff_base_s=60)
    world, campaign = world_with_campaign(1, spec(in_progress_timeout_s=600, retry=retry))
    tick(world)
    assert tick(world, 601).retries_scheduled == 1
    assert tick(world, 30).notified == 0  # backoff not over
    assert tick(world, 31).notified == 1
    [again] = deployments(world, campaign)
    assert again.state is S.NOTIFIED and again.attempt == 2


def test_a_transient_failure_is_retried_after_backoff_and_a_permanent_one_never() -> None:
    retry = RetryPolicy(max_attempts=3, backoff_base_s=60)
    waves = (WaveSpec(percent=100, error_threshold_pct=100),)
    world, campaign = world_with_campaign(2, spec(retry=retry, waves=waves))
    tick(world)
    transient, permanent = deployments(world, campaign, S.NOTIFIED)
    report(world, transient, OtaStatus.FAILED, "NETWORK_LOST")
    report(world, permanent, OtaStatus.FAILED, "SIGNATURE_INVALID")
    assert world.deployments.get(campaign.campaign_id, transient.vin).state is S.RETRY_SCHEDULED
    assert world.deployments.get(campaign.campaign_id, permanent.vin).state is S.FAILED

    assert tick(world, 59).notified == 0
    assert tick(world, 2).notified == 1
    assert world.notifier.notified(transient.vin) == 2
    assert world.notifier.notified(permanent.vin) == 1
    tick(world, 3600)
    assert world.notifier.notified(permanent.vin) == 1


# Deferral ----------------------------------------------------------------------------------------


def test_an_ineligible_vehicle_is_deferred_with_its_reason_and_rechecked_later() -> None:
    world = FakeWorld()
    world, campaign = world_with_campaign(1, spec(defer_recheck_s=300), world)
    low = vehicle(0, world.clock.now(), soc_pct=12.0)
    world.vehicles.put(low)

    assert tick(world).deferred == 1
    [deferred] = deployments(world, campaign)
    assert deferred.state is S.DEFERRED and deferred.reason == "battery 12% < 30%"

    world.vehicles.put(low.model_copy(update={"soc_pct": 90.0}))
    assert tick(world, 100).notified == 0  # not re-checked before its time
    assert tick(world, 201).notified == 1
    assert deployments(world, campaign)[0].state is S.NOTIFIED


def test_a_maintenance_window_across_midnight_is_judged_in_each_vehicles_time_zone() -> None:
    # 08:30 UTC on 30 Nov is 00:30 in Los Angeles (inside 23:00-02:00) and 09:30 in Berlin (outside).
    world = FakeWorld()
    world.clock.at = datetime(2026, 11, 30, 8, 30, tzinfo=UTC)
    now = world.clock.now()
    world.vehicles.put(vehicle(0, now, timezone="America/Los_Angeles"))
    world.vehicles.put(vehicle(1, now, timezone="Europe/Berlin"))
    world, campaign = world_with_campaign(0, spec(eligibility=window("23:00", "02:00")), world)

    result = tick(world)
    assert (result.notified, result.deferred) == (1, 1)
    by_vin = {d.vin: d for d in deployments(world, campaign)}
    assert by_vin[vehicle(0, now).vin].state is S.NOTIFIED
    berlin = by_vin[vehicle(1, now).vin]
    assert berlin.state is S.DEFERRED
    assert berlin.reason == "outside maintenance window 23:00-02:00 (local Mon 09:30)"


# Crash recovery and races ------------------------------------------------------------------------


def test_a_claimed_notice_that_never_went_out_is_sent_once_after_its_lease() -> None:
    world, campaign = world_with_campaign(1, spec())
    [only] = deployments(world, campaign)
    world.notifier.unreachable.add(only.vin)  # the claim lands; the notice is never recorded as sent
    assert tick(world).notified == 0
    assert deployments(world, campaign)[0].state is S.NOTIFIED

    world.notifier.unreachable.clear()
    assert tick(world, 30).resent == 0  # the lease still holds
    assert tick(world, NOTICE_LEASE.total_seconds()).resent == 1
    assert tick(world, NOTICE_LEASE.total_seconds()).resent == 0
    assert world.notifier.notified(only.vin) == 1


def test_two_ticks_racing_for_the_same_vehicles_notify_each_exactly_once() -> None:
    world, campaign = world_with_campaign(12, spec(max_in_flight=12))
    results = []

    def second_tick_midway(change, applied) -> None:
        world.deployments.after_apply = None  # once
        results.append(run_tick(world.ports, world.clock.now()))

    world.deployments.after_apply = second_tick_midway
    results.append(tick(world))
    assert sum(r.notified for r in results) == 12
    assert all(world.notifier.notified(d.vin) == 1 for d in deployments(world, campaign))
    assert world.ports.campaign(campaign.campaign_id).counters.in_flight == 12
    assert counters_match_deployments(world, campaign.campaign_id)


def test_a_late_retry_report_keeps_its_retry_hint_when_a_tick_looks_in_between() -> None:
    # A store-and-forward report: the failure happened long ago, so its retry time is already past.
    retry = RetryPolicy(max_attempts=2, backoff_base_s=1)
    world, campaign = world_with_campaign(2, spec(retry=retry, in_progress_timeout_s=600))
    world.vehicles.put(vehicle(1, world.clock.now(), soc_pct=5.0))  # waits in the wave, deferred
    tick(world)
    [notified] = deployments(world, campaign, S.NOTIFIED)
    report(world, notified, OtaStatus.INSTALLING)
    installing = world.deployments.get(campaign.campaign_id, notified.vin)
    ticks_between = []

    def tick_between_hint_and_claim(change) -> None:
        if change.new_state is S.RETRY_SCHEDULED:
            world.deployments.before_apply = None
            ticks_between.append(run_tick(world.ports, world.clock.now()))

    world.deployments.before_apply = tick_between_hint_and_claim
    world.clock.advance(60)
    report(world, installing, OtaStatus.FAILED, "NETWORK_LOST", at=world.clock.now() - timedelta(seconds=30))
    assert ticks_between  # the race was staged
    assert world.schedule.of(campaign.campaign_id, Lane.WAIT, notified.vin)  # the retry hint survived

    result = tick(world, 5)  # well before the 600 s in-flight deadline
    assert result.notified == 1
    assert world.deployments.get(campaign.campaign_id, notified.vin).attempt == 2


def test_no_reader_sees_a_negative_counter_when_a_tick_claims_a_retry_before_the_report_counted_it() -> None:
    retry = RetryPolicy(max_attempts=2, backoff_base_s=0)
    world, campaign = world_with_campaign(2, spec(retry=retry))
    world.vehicles.put(vehicle(1, world.clock.now(), soc_pct=5.0))  # waits in the wave, deferred
    tick(world)
    [notified] = deployments(world, campaign, S.NOTIFIED)
    report(world, notified, OtaStatus.INSTALLING)
    installing = world.deployments.get(campaign.campaign_id, notified.vin)
    paused, go = threading.Event(), threading.Event()

    def pause_before_counting(lane, hint) -> None:
        if lane is Lane.WAIT:  # the report's retry hint is filed; its counters are not yet added
            world.schedule.after_hint = None
            paused.set()
            assert go.wait(5)

    world.schedule.after_hint = pause_before_counting
    reporter = threading.Thread(
        target=report, args=(world, installing, OtaStatus.FAILED, "NETWORK_LOST"), daemon=True
    )
    reporter.start()
    assert paused.wait(5)

    def let_the_report_finish() -> None:
        go.set()
        reporter.join(5)

    world.clock.on_sleep = let_the_report_finish  # the tick waits for the report's increment
    result = tick(world, 1)
    assert result.notified == 1
    assert not reporter.is_alive()
    assert min(world.campaigns.lowest.values()) == 0
    assert world.campaigns.lowest.get(state_count(S.RETRY_SCHEDULED), 0) == 0
    assert counters_match_deployments(world, campaign.campaign_id)


def test_counters_at_rest_equal_a_recount_after_a_rollout_with_retries_and_deferrals() -> None:
    retry = RetryPolicy(max_attempts=3, backoff_base_s=10)
    waves = (WaveSpec(percent=50, error_threshold_pct=100, success_threshold_pct=0), WaveSpec(percent=100))
    world, campaign = world_with_campaign(10, spec(retry=retry, waves=waves, max_in_flight=4))
    world.vehicles.put(vehicle(9, world.clock.now(), model=MODEL, soc_pct=5.0))
    for step in range(12):
        tick(world, 15)
        for n, d in enumerate(deployments(world, campaign, S.NOTIFIED)):
            report(world, d, OtaStatus.FAILED if (n + step) % 3 == 0 else OtaStatus.SUCCEEDED, "NETWORK_LOST")
    assert counters_match_deployments(world, campaign.campaign_id)
    assert min(world.campaigns.lowest.values()) == 0


def test_a_vehicles_ota_history_names_each_campaign_and_the_version_it_was_to_install() -> None:
    from fleetota_core.views.vehicles import ota_history

    world, campaign = world_with_campaign(2, spec())
    tick(world)
    [first, _] = deployments(world, campaign)
    report(world, first, OtaStatus.SUCCEEDED)
    history = ota_history(world.ports, first.vin)
    assert history[["campaign_id", "state", "target_version", "attempt"]].values.tolist() == [
        [campaign.campaign_id, "SUCCEEDED", "2.0.0", 1]
    ]
