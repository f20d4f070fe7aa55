"""Compliance evidence over fakes: a VIN's software history and a release's fleet report."""

from __future__ import annotations

import pytest
from campaign_world import MODEL, deployments, finish, report, spec, tick, vin, world_with_campaign

from fleetota_core.domain.campaign import WaveSpec
from fleetota_core.domain.delivery import DeliveryPolicy, InstallPolicy
from fleetota_core.domain.deployment import DeploymentState
from fleetota_core.domain.eligibility import EligibilityRules, MaintenanceWindow
from fleetota_core.domain.telemetry import OtaStatus
from fleetota_core.errors import InputError, ResourceNotFoundError
from fleetota_core.services.campaigns.actions import approve_campaign
from fleetota_core.services.campaigns.compliance import release_report, vin_history
from fleetota_core.services.campaigns.create import create_campaign
from fleetota_core.services.campaigns.releases import publish_release

S = DeploymentState


def reported(world, n: int, version: str) -> None:
    """Vehicle ``n``'s telemetry now says ``version``."""
    v = world.vehicles.by_vin[vin(n)]
    world.vehicles.put(v.model_copy(update={"firmware_version": version, "last_ts": world.clock.now()}))


def test_a_vins_history_dates_each_version_by_its_install_and_names_campaign_image_and_approver() -> None:
    world, first = world_with_campaign(2, spec(name="spring", critical=True))
    approve_campaign(first.campaign_id, "bob", "reviewed", world.ports)
    tick(world, 10)
    installed_2_0 = world.clock.advance(60)
    finish(world, first, OtaStatus.SUCCEEDED)
    for n in range(2):
        reported(world, n, "2.0.0")

    publish_release(b"next" * 64, "2.1.0", [MODEL], [], None, "", "alice", world.ports)
    second = create_campaign(spec(name="summer", release_version="2.1.0"), "carol", world.ports)
    tick(world, 3600)
    installed_2_1 = world.clock.advance(60)
    finish(world, second, OtaStatus.SUCCEEDED)
    reported(world, 0, "2.1.0")

    history = vin_history(vin(0), world.ports)
    rows = [(i.version, i.since, i.until, i.campaign_id) for i in history.intervals]
    assert rows == [
        ("1.0.0", None, installed_2_0, None),
        ("2.0.0", installed_2_0, installed_2_1, first.campaign_id),
        ("2.1.0", installed_2_1, None, second.campaign_id),
    ]
    spring = history.intervals[1]
    assert spring.release_sha256 == first.release.manifest.sha256
    assert (spring.created_by, spring.approved_by) == ("alice", "bob")
    assert history.running_at(installed_2_1 - (installed_2_1 - installed_2_0) / 2).version == "2.0.0"
    assert history.running_at(installed_2_0.replace(year=2020)).version == "1.0.0"  # before records
    assert [a.state for a in history.attempts] == ["SUCCEEDED", "SUCCEEDED"]


def test_a_failed_attempt_is_evidence_but_changes_no_interval() -> None:
    world, campaign = world_with_campaign(1, spec())
    tick(world, 10)
    (d,) = deployments(world, campaign, S.NOTIFIED)
    report(world, d, OtaStatus.FAILED, "VERIFY_FAILED")

    history = vin_history(vin(0), world.ports)
    assert [(i.version, i.since, i.until) for i in history.intervals] == [("1.0.0", None, None)]
    assert "no install recorded" in history.intervals[0].evidence
    assert [(a.state, a.error_code) for a in history.attempts] == [("FAILED", "VERIFY_FAILED")]


def test_a_version_no_campaign_installed_is_shown_as_reported_in_telemetry() -> None:
    world, campaign = world_with_campaign(1, spec())
    tick(world, 10)
    finish(world, campaign, OtaStatus.SUCCEEDED)
    seen = world.clock.advance(600)
    reported(world, 0, "9.9.9")  # flashed in a workshop

    last = vin_history(vin(0), world.ports).intervals[-2:]
    assert (last[0].version, last[0].until) == ("2.0.0", seen)
    assert (last[1].version, last[1].since, last[1].campaign_id) == ("9.9.9", seen, None)
    assert "no FleetOTA install explains it" in last[1].evidence


def test_telemetry_older_than_the_last_install_is_not_read_as_a_different_version() -> None:
    world, campaign = world_with_campaign(1, spec())
    tick(world, 10)
    world.clock.advance(60)
    finish(world, campaign, OtaStatus.SUCCEEDED)  # telemetry still says 1.0.0, from before the install

    history = vin_history(vin(0), world.ports)
    assert [(i.version, i.until is None) for i in history.intervals] == [("1.0.0", False), ("2.0.0", True)]


def test_an_unknown_or_malformed_vin_is_a_clear_error() -> None:
    world, _ = world_with_campaign(1, spec())
    with pytest.raises(ResourceNotFoundError, match="never reported and no campaign targeted it"):
        vin_history(vin(77), world.ports)
    with pytest.raises(InputError, match="not a VIN"):
        vin_history("NOT-A-VIN", world.ports)


def test_a_release_report_tells_running_installed_pending_and_failed_vehicles_apart() -> None:
    world, campaign = world_with_campaign(5, spec(waves=(WaveSpec(percent=60), WaveSpec(percent=40))))
    tick(world, 10)
    wave1 = sorted(deployments(world, campaign, S.NOTIFIED), key=lambda d: d.vin)
    installed_at = world.clock.advance(60)
    report(world, wave1[0], OtaStatus.SUCCEEDED)
    report(world, wave1[1], OtaStatus.SUCCEEDED)
    report(world, wave1[2], OtaStatus.FAILED, "INSTALL_FAILED")
    reported(world, int(wave1[0].vin[-7:]), "2.0.0")  # the other install is not in telemetry yet
    world.vehicles.put(
        world.vehicles.by_vin[vin(0)].model_copy(update={"vin": vin(9), "firmware_version": "2.0.0"})
    )

    rows = {r.vin: r for r in release_report("2.0.0", world.ports)}
    assert rows[wave1[0].vin].status == "running" and rows[wave1[0].vin].since == installed_at
    assert rows[wave1[1].vin].status == "installed, not yet reported"
    assert (rows[wave1[2].vin].status, rows[wave1[2].vin].detail) == ("failed", "FAILED INSTALL_FAILED")
    waiting = [r for r in rows.values() if r.status == "pending"]
    assert len(waiting) == 2  # the second wave has not opened
    assert (rows[vin(9)].status, rows[vin(9)].detail) == ("running", "no FleetOTA campaign installed it")
    with pytest.raises(ResourceNotFoundError, match="not published"):
        release_report("7.7.7", world.ports)


def test_a_vehicle_with_the_image_staged_but_not_installed_is_pending_in_the_release_report() -> None:
    night = EligibilityRules(maintenance_windows=(MaintenanceWindow(start="01:00", end="05:00"),))
    policy = DeliveryPolicy(install=InstallPolicy.WINDOW)
    world, campaign = world_with_campaign(1, spec(eligibility=night, delivery=policy))
    tick(world, 10)
    (d,) = deployments(world, campaign, S.NOTIFIED)
    report(world, d, OtaStatus.DOWNLOADED)
    tick(world, 10)
    (row,) = release_report("2.0.0", world.ports)
    assert row.status == "pending"
    assert row.detail.startswith("AWAITING_INSTALL outside maintenance window")
