"""The delivery domain rules: two-phase states, report mapping, network policy, window openings."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from campaign_world import vehicle

from fleetota_core.domain.delivery import DeliveryPolicy, DownloadNetworks, InstallPolicy, plan_download
from fleetota_core.domain.deployment import (
    STAGED,
    DeploymentState,
    IllegalTransition,
    Lane,
    apply_report,
    can_transition,
    counter_deltas,
    lane_of,
)
from fleetota_core.domain.eligibility import EligibilityRules, MaintenanceWindow, next_opening
from fleetota_core.domain.telemetry import DriveState, NetworkType, OtaReport, OtaStatus

S = DeploymentState
NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def ota(status: OtaStatus) -> OtaReport:
    return OtaReport(campaign_id="c", deployment_id="c.v", status=status, target_version="2.0.0")


def test_a_staged_image_installs_or_fails_but_never_goes_back_to_downloading() -> None:
    assert apply_report(S.VERIFYING, ota(OtaStatus.DOWNLOADED)) is S.DOWNLOADED
    assert apply_report(S.DOWNLOADING, ota(OtaStatus.DOWNLOADED)) is S.DOWNLOADED  # a lost VERIFYING
    assert apply_report(S.AWAITING_INSTALL, ota(OtaStatus.INSTALLING)) is S.INSTALLING
    assert apply_report(S.AWAITING_CONSENT, ota(OtaStatus.INSTALLING)) is S.INSTALLING  # the driver accepted
    assert apply_report(S.AWAITING_INSTALL, ota(OtaStatus.DOWNLOADED)) is None  # a repeat
    assert isinstance(apply_report(S.AWAITING_INSTALL, ota(OtaStatus.DOWNLOADING)), IllegalTransition)
    assert can_transition(S.AWAITING_CONSENT, S.AWAITING_INSTALL)
    assert not can_transition(S.AWAITING_INSTALL, S.AWAITING_CONSENT)
    assert not can_transition(S.INSTALLING, S.AWAITING_INSTALL)


def test_staged_deployments_hold_no_in_flight_slot_and_are_looked_after_in_the_active_lane() -> None:
    deltas = counter_deltas(S.VERIFYING, S.DOWNLOADED, 0)
    assert {k.kind: v for k, v in deltas.items() if k.kind != "state"} == {"in_flight": -1}
    assert {lane_of(s) for s in STAGED} == {Lane.ACTIVE}


def test_a_two_phase_download_ignores_battery_drive_state_and_window_but_not_the_network() -> None:
    rules = EligibilityRules(
        maintenance_windows=(MaintenanceWindow(start=time(1), end=time(5)),), networks=(NetworkType.WIFI,)
    )
    driving = vehicle(1, NOW, drive_state=DriveState.DRIVING, speed_kph=80.0, soc_pct=10.0)
    two_phase = DeliveryPolicy(install=InstallPolicy.WINDOW)
    assert plan_download(driving, rules, two_phase, 100, NOW).verdict.eligible
    assert not plan_download(driving, rules, DeliveryPolicy(), 100, NOW).verdict.eligible
    on_lte = vehicle(2, NOW, network=NetworkType.LTE)
    assert plan_download(on_lte, rules, two_phase, 100, NOW).verdict.reason == "network LTE not in WIFI"


def test_the_network_policy_grants_cellular_only_where_it_permits_and_reserves_under_a_budget() -> None:
    rules = EligibilityRules()
    lte, wifi = vehicle(1, NOW, network=NetworkType.LTE), vehicle(2, NOW)
    assert plan_download(lte, rules, DeliveryPolicy(), 100, NOW).cellular
    budget = DeliveryPolicy(cellular_budget_gb=1e-6)
    assert (
        plan_download(lte, rules, budget, 100, NOW).reserve,
        plan_download(wifi, rules, budget, 100, NOW).cellular,
    ) == (100, False)
    assert plan_download(lte, rules, budget, 5000, NOW).verdict.reason.startswith("cellular_budget")
    wifi_only = DeliveryPolicy(download_networks=DownloadNetworks.WIFI)
    assert not plan_download(lte, rules, wifi_only, 100, NOW).verdict.eligible
    assert not plan_download(wifi, rules, wifi_only, 100, NOW).cellular


def test_the_next_window_opening_is_found_in_local_time_across_midnight() -> None:
    night = (MaintenanceWindow(start=time(23), end=time(2)),)
    berlin = ZoneInfo("Europe/Berlin")
    noon = datetime(2026, 11, 30, 12, 0, tzinfo=berlin)
    assert next_opening(night, noon) == noon.replace(hour=23)
    inside = noon.replace(hour=23, minute=30)
    assert next_opening(night, inside) == inside
    weekdays = (MaintenanceWindow(start=time(1), end=time(3), days=("sat",)),)
    assert next_opening(weekdays, noon) == (noon + timedelta(days=5)).replace(hour=1)  # Monday -> Saturday
