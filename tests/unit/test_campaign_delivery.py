"""Two-phase delivery and the network policy over in-memory fakes: install policies, Wi-Fi only, budget."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest
from campaign_world import deployments, spec, tick, window, world_with_campaign

from fleetota_core.domain.campaign import Campaign, CampaignState
from fleetota_core.domain.delivery import DeliveryPolicy, DownloadNetworks, InstallPolicy
from fleetota_core.domain.deployment import Deployment, DeploymentState, RetryPolicy
from fleetota_core.domain.firmware import load_public_key
from fleetota_core.domain.install_permit import SignedInstallPermit, permit_problem
from fleetota_core.domain.job_document import TrustedKeys
from fleetota_core.domain.telemetry import DriveState, NetworkType, OtaReport, OtaStatus
from fleetota_core.services.campaigns.actions import pause_campaign
from fleetota_core.services.campaigns.preview import preview_campaign
from fleetota_core.services.campaigns.reports import apply_ota_reports
from fleetota_core.services.campaigns.tick_install import NO_SLOT

if TYPE_CHECKING:
    from campaign_fakes import FakeWorld

S = DeploymentState
NIGHT = window("01:00", "05:00")  # the clock starts at 12:00 UTC: outside it


def send(world: FakeWorld, d: Deployment, status: OtaStatus, **extra: Any) -> None:
    ota = OtaReport(
        campaign_id=d.campaign_id,
        deployment_id=d.deployment_id,
        status=status,
        attempt=d.attempt,
        target_version="2.0.0",
        **extra,
    )
    apply_ota_reports([(d.vin, ota)], world.ports, world.clock.now())


def install_notices(world: FakeWorld) -> list[dict[str, Any]]:
    return [n for _, n in world.notifier.notices if n["type"] == "install"]


def job_of(world: FakeWorld, d: Deployment) -> Any:
    return world.releases.jobs[f"jobs/{d.vin}/{d.deployment_id}.json"].document


def staged_world(n: int, install: InstallPolicy, **delivery: Any) -> tuple[FakeWorld, Campaign]:
    """Every vehicle notified (downloads ignore the window) and reporting its image DOWNLOADED."""
    policy = DeliveryPolicy(install=install, **delivery)
    world, campaign = world_with_campaign(n, spec(eligibility=NIGHT, delivery=policy, defer_recheck_s=600))
    assert tick(world).notified == n
    for d in deployments(world, campaign, S.NOTIFIED):
        assert job_of(world, d).install_policy == install.value
        send(world, d, OtaStatus.DOWNLOADED, progress_pct=100, bytes_wifi=512)
    return world, campaign


def test_a_window_campaign_downloads_at_noon_and_installs_only_inside_the_night_window() -> None:
    world, campaign = staged_world(3, InstallPolicy.WINDOW)
    # Downloaded: no in-flight slot held any more, the image waits for its window.
    assert world.ports.campaign(campaign.campaign_id).counters.in_flight == 0
    tick(world, 60)
    waiting = deployments(world, campaign, S.AWAITING_INSTALL)
    assert len(waiting) == 3
    assert all((d.reason or "").startswith("outside maintenance window 01:00-05:00") for d in waiting)
    for _ in range(12):  # the afternoon and evening: re-checked, never permitted
        tick(world, 1200)
    assert install_notices(world) == []
    world.clock.at = world.clock.at.replace(hour=1, minute=5) + timedelta(days=1)
    tick(world)
    permits = install_notices(world)
    assert sorted(p["vin"] for p in permits) == sorted(d.vin for d in waiting)
    # The permit verifies with the director key and is bound to the vehicle's staged job.
    keys = TrustedKeys(
        image=load_public_key(world.image_signer.public_key_der()),
        director=load_public_key(world.director_signer.public_key_der()),
    )
    first = deployments(world, campaign, S.AWAITING_INSTALL)[0]
    signed = SignedInstallPermit.model_validate(next(p for p in permits if p["vin"] == first.vin)["permit"])
    assert permit_problem(signed, keys, job_of(world, first), world.clock.now()) is None
    assert permit_problem(signed, keys, job_of(world, first), world.clock.now() + timedelta(hours=1))
    for d in deployments(world, campaign, S.AWAITING_INSTALL):
        send(world, d, OtaStatus.INSTALLING)
        send(world, d, OtaStatus.SUCCEEDED, progress_pct=100)
    tick(world, 60)
    assert world.ports.campaign(campaign.campaign_id).state is CampaignState.COMPLETED


def test_an_install_window_hours_after_notification_does_not_time_the_install_out() -> None:
    world, campaign = staged_world(1, InstallPolicy.WINDOW)
    world.clock.at = world.clock.at.replace(hour=2) + timedelta(days=1)  # 14 h > the 1 h timeout
    tick(world)
    (d,) = deployments(world, campaign, S.AWAITING_INSTALL)
    send(world, d, OtaStatus.INSTALLING)
    tick(world, 600)
    tick(world, 600)
    assert [x.state for x in deployments(world, campaign)] == [S.INSTALLING]


def test_a_paused_campaign_sends_no_install_permit() -> None:
    world, campaign = staged_world(2, InstallPolicy.WINDOW)
    pause_campaign(campaign.campaign_id, "alice", "hold installs", world.ports)
    world.clock.at = world.clock.at.replace(hour=2) + timedelta(days=1)
    tick(world)
    tick(world, 900)
    assert install_notices(world) == []
    assert {d.reason for d in deployments(world, campaign)} == {"campaign paused"}


def test_a_staged_image_not_installed_before_its_job_expires_times_out() -> None:
    policy = DeliveryPolicy(install=InstallPolicy.WINDOW)
    world, campaign = world_with_campaign(
        1, spec(eligibility=NIGHT, delivery=policy, job_ttl_s=3600, retry=RetryPolicy(max_attempts=1))
    )
    tick(world)
    (d,) = deployments(world, campaign)
    send(world, d, OtaStatus.DOWNLOADED, progress_pct=100)
    for _ in range(8):
        tick(world, 600)
    (d,) = deployments(world, campaign)
    assert d.state is S.TIMED_OUT and d.error_code == "TIMED_OUT"


def test_consent_the_driver_accepts_before_the_deadline_and_the_install_starts_without_a_permit() -> None:
    world, campaign = staged_world(2, InstallPolicy.CONSENT, consent_deadline_s=7200)
    tick(world, 60)
    consenting, silent = deployments(world, campaign, S.AWAITING_CONSENT)
    assert job_of(world, consenting).consent_deadline_s == 7200
    send(world, consenting, OtaStatus.INSTALLING)
    installing = world.deployments.get(campaign.campaign_id, consenting.vin)
    assert installing.state is S.INSTALLING and installing.install_at == world.clock.now()
    tick(world, 3000)
    assert world.deployments.get(campaign.campaign_id, silent.vin).state is S.AWAITING_CONSENT
    send(world, installing, OtaStatus.SUCCEEDED, progress_pct=100)
    tick(world, 4300)  # past the consent deadline: the window rule applies (outside the window)
    after = world.deployments.get(campaign.campaign_id, silent.vin)
    assert after.state is S.AWAITING_INSTALL and "maintenance window" in (after.reason or "")
    assert world.deployments.get(campaign.campaign_id, consenting.vin).state is S.SUCCEEDED
    assert install_notices(world) == []


def test_a_wifi_only_campaign_defers_vehicles_on_cellular_and_signs_wifi_only_jobs() -> None:
    policy = DeliveryPolicy(download_networks=DownloadNetworks.WIFI)
    world, campaign = world_with_campaign(4, spec(delivery=policy))
    lte = sorted(world.vehicles.by_vin)[:2]
    for vin in lte:
        world.vehicles.put(world.vehicles.by_vin[vin].model_copy(update={"network": NetworkType.LTE}))
    tick(world)
    deferred = deployments(world, campaign, S.DEFERRED)
    assert sorted(d.vin for d in deferred) == lte
    assert {d.reason for d in deferred} == {"network LTE: this campaign downloads over Wi-Fi"}
    notified = deployments(world, campaign, S.NOTIFIED)
    assert len(notified) == 2 and not any(job_of(world, d).cellular_allowed for d in notified)


def test_wifi_only_allows_cellular_for_a_small_artifact_or_after_the_deadline() -> None:
    small = DeliveryPolicy(download_networks=DownloadNetworks.WIFI, cellular_max_mb=0.001)  # 1,000 bytes
    world, _ = world_with_campaign(1, spec(delivery=small))
    now = world.clock.now()
    assert small.cellular_permitted(512, now) and not small.cellular_permitted(2000, now)
    later = DeliveryPolicy(download_networks=DownloadNetworks.WIFI, cellular_after=now + timedelta(hours=1))
    assert not later.cellular_permitted(512, now)
    assert later.cellular_permitted(512, now + timedelta(hours=1))


def test_the_cellular_budget_stops_cellular_downloads_and_the_rest_wait_for_wifi() -> None:
    # 512-byte artifact, budget 1,200 bytes: two cellular downloads fit, the third would exceed it.
    policy = DeliveryPolicy(cellular_budget_gb=1.2e-6, cellular_cost_per_gb=5.0)
    world, campaign = world_with_campaign(5, spec(delivery=policy, defer_recheck_s=60))
    on_lte = sorted(world.vehicles.by_vin)[:4]
    for vin in on_lte:
        world.vehicles.put(world.vehicles.by_vin[vin].model_copy(update={"network": NetworkType.LTE}))
    tick(world)
    notified = {d.vin: d for d in deployments(world, campaign, S.NOTIFIED)}
    cellular = [vin for vin in notified if job_of(world, notified[vin]).cellular_allowed]
    assert len(cellular) == 2 and set(cellular) <= set(on_lte)
    wifi = [vin for vin in notified if vin not in on_lte]
    assert len(wifi) == 1 and not job_of(world, notified[wifi[0]]).cellular_allowed  # no budget spent
    waiting = deployments(world, campaign, S.DEFERRED)
    assert len(waiting) == 2 and all((d.reason or "").startswith("cellular_budget") for d in waiting)
    assert world.ports.campaign(campaign.campaign_id).counters.cellular_reserved == 1024
    # At home on Wi-Fi they download, over Wi-Fi only.
    for d in waiting:
        world.vehicles.put(world.vehicles.by_vin[d.vin].model_copy(update={"network": NetworkType.WIFI}))
    tick(world, 61)
    again = [world.deployments.get(campaign.campaign_id, d.vin) for d in waiting]
    assert all(d.state is S.NOTIFIED and not job_of(world, d).cellular_allowed for d in again)
    assert world.ports.campaign(campaign.campaign_id).counters.cellular_reserved == 1024


def test_a_lost_claim_gives_its_cellular_reservation_back() -> None:
    policy = DeliveryPolicy(cellular_budget_gb=1e-6)
    world, campaign = world_with_campaign(1, spec(delivery=policy))
    (vin,) = world.vehicles.by_vin
    world.vehicles.put(world.vehicles.by_vin[vin].model_copy(update={"network": NetworkType.LTE}))
    world.deployments.before_apply = lambda change: world.deployments.items.__setitem__(
        (change.campaign_id, change.vin),
        world.deployments.items[(change.campaign_id, change.vin)].changed(version=99),
    )
    tick(world)
    assert world.ports.campaign(campaign.campaign_id).counters.cellular_reserved == 0


def test_downloaded_bytes_are_counted_once_per_attempt_by_network_and_published() -> None:
    world, campaign = world_with_campaign(2, spec())
    tick(world)
    first, second = deployments(world, campaign, S.NOTIFIED)
    send(world, first, OtaStatus.DOWNLOADING, progress_pct=50, bytes_wifi=100, bytes_cellular=156)
    send(world, first, OtaStatus.VERIFYING, progress_pct=100, bytes_wifi=356, bytes_cellular=156)
    send(world, first, OtaStatus.VERIFYING, progress_pct=100, bytes_wifi=356, bytes_cellular=156)  # again
    send(world, first, OtaStatus.INSTALLING, bytes_wifi=356, bytes_cellular=156)
    send(world, second, OtaStatus.SUCCEEDED, progress_pct=100, bytes_wifi=512)
    counters = world.ports.campaign(campaign.campaign_id).counters
    assert (counters.bytes_wifi, counters.bytes_cellular) == (868, 156)
    stored = world.deployments.get(campaign.campaign_id, first.vin)
    assert (stored.bytes_wifi, stored.bytes_cellular) == (356, 156)
    tick(world, 10)
    data, _ = world.metrics.published[-1]
    by_key = {(name, tuple(sorted(dims.items()))): value for name, value, _, dims in data}
    assert by_key[("DownloadBytes", (("Network", "cellular"),))] == 156
    assert by_key[("DownloadBytes", (("CampaignId", campaign.campaign_id), ("Network", "wifi")))] == 868


def test_a_two_phase_campaign_downloads_while_driving_on_low_charge_but_installs_only_parked() -> None:
    policy = DeliveryPolicy(install=InstallPolicy.WINDOW)
    world, campaign = world_with_campaign(1, spec(delivery=policy))
    (vin,) = world.vehicles.by_vin
    driving = {
        "drive_state": DriveState.DRIVING,
        "speed_kph": 50.0,
        "soc_pct": 20.0,
        "network": NetworkType.LTE,
    }
    world.vehicles.put(world.vehicles.by_vin[vin].model_copy(update=driving))
    tick(world)
    (d,) = deployments(world, campaign, S.NOTIFIED)
    send(world, d, OtaStatus.DOWNLOADED, progress_pct=100, bytes_cellular=512)
    tick(world, 30)
    (d,) = deployments(world, campaign)
    assert d.state is S.AWAITING_INSTALL and d.reason == "battery 20% < 30%"
    parked = {"drive_state": DriveState.PARKED, "speed_kph": 0.0, "soc_pct": 60.0}
    world.vehicles.put(world.vehicles.by_vin[vin].model_copy(update=parked))
    tick(world, 300)
    assert [n["vin"] for n in install_notices(world)] == [vin]


def test_the_preview_forecasts_both_phases_and_the_cellular_data_capped_at_the_budget() -> None:
    policy = DeliveryPolicy(install=InstallPolicy.WINDOW, cellular_budget_gb=1.2e-6, cellular_cost_per_gb=4.0)
    world, _ = world_with_campaign(5, spec())
    for vin in sorted(world.vehicles.by_vin)[:3]:
        world.vehicles.put(world.vehicles.by_vin[vin].model_copy(update={"network": NetworkType.LTE}))
    preview = preview_campaign(spec(eligibility=NIGHT, delivery=policy), world.ports)
    forecast = preview.delivery
    download, install = forecast.phases
    now = world.clock.now()
    assert datetime.fromisoformat(download["expected_done"]) < now + timedelta(minutes=5)
    # Downloaded by 12:02 UTC; the night window opens at 01:00 the next day, then a 600 s install.
    assert datetime.fromisoformat(install["expected_done"]) == now.replace(hour=1, minute=10) + timedelta(
        days=1
    )
    assert forecast.cellular_vehicles_now == 3
    assert forecast.cellular_demand_bytes == 3 * 512
    # Two whole 512-byte artifacts fit the 1,200-byte budget; the rest goes over Wi-Fi.
    assert (forecast.projected_cellular_bytes, forecast.projected_wifi_bytes) == (1024, 5 * 512 - 1024)
    assert forecast.projected_cellular_cost == round(1024 / 1e9 * 4.0, 2)
    wifi_only = DeliveryPolicy(download_networks=DownloadNetworks.WIFI)
    assert preview_campaign(spec(delivery=wifi_only), world.ports).delivery.projected_cellular_bytes == 0
    immediate = preview_campaign(spec(), world.ports).delivery
    assert immediate.phases[1]["after_s"] == pytest.approx(
        preview_campaign(spec(), world.ports).estimated_duration_s
    )


def test_install_permits_go_out_in_one_batch_per_page_and_no_more_than_max_in_flight() -> None:
    policy = DeliveryPolicy(install=InstallPolicy.WINDOW)
    world, campaign = world_with_campaign(30, spec(eligibility=NIGHT, delivery=policy, max_in_flight=10))
    for _ in range(3):  # ten at a time: download slots free up as images are staged
        tick(world, 60)
        for d in deployments(world, campaign, S.NOTIFIED):
            send(world, d, OtaStatus.DOWNLOADED, progress_pct=100, bytes_wifi=512)
    calls: list[int] = []
    publish = world.notifier.notify_vehicles
    world.notifier.notify_vehicles = lambda notices: calls.append(len(notices)) or publish(notices)
    world.clock.at = world.clock.at.replace(hour=1, minute=5) + timedelta(days=1)
    tick(world)
    assert calls == [10]  # one request's worth of permits, capped at max_in_flight
    slots = [d for d in deployments(world, campaign, S.AWAITING_INSTALL) if d.reason == NO_SLOT]
    assert len(slots) == 20
