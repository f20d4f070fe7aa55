"""The dashboard's read models and form logic, without AWS or Streamlit."""

from __future__ import annotations

from datetime import UTC, datetime, time

import pandas as pd
import pytest

from fleetota_core.domain.campaign import Campaign, CampaignCounters, CampaignSpec, CampaignState, WaveSpec
from fleetota_core.domain.firmware import FirmwareManifest, FirmwareRelease
from fleetota_core.domain.vehicle import battery_category
from fleetota_core.domain.vin import MAKE_BY_WMI, validate_vin
from fleetota_core.errors import ValidationError
from fleetota_core.local.sample_fleet import sample_fleet
from fleetota_core.local.simulator_process import SimulatorOptions, simulator_status
from fleetota_core.views.alerts import history_alerts, ledger_alerts
from fleetota_core.views.campaign_form import build_spec, parse_waves
from fleetota_core.views.campaigns import funnel, reasons, wave_progress
from fleetota_core.views.fleet import (
    battery_categories,
    filter_fleet,
    fleet_kpis,
    normalize_fleet,
    version_key,
)
from fleetota_core.views.fleet_map import offline_map

VALID_FORM = {
    "name": "Spring rollout",
    "release_version": "2.1.0",
    "kind": "update",
    "waves": "10%, 30%, 60%",
    "success_pct": 90.0,
    "error_pct": 10.0,
    "vins": "",
    "abort_failure_pct": 25.0,
    "abort_min_executed": 10,
    "max_in_flight": 100,
    "timeout_min": 60.0,
    "retry_max_attempts": 3,
    "retry_backoff_s": 60.0,
    "min_soc_pct": 30.0,
    "require_parked": True,
    "networks": ["WIFI", "LTE"],
    "min_signal_dbm": -110,
}


def test_a_complete_form_becomes_a_campaign_spec_with_its_waves_and_rules():
    window = {
        "use_window": True,
        "window_start": time(1),
        "window_end": time(5),
        "window_days": ["sat", "sun"],
    }
    spec, errors = build_spec({**VALID_FORM, "models": ["Tesla Model 3"], **window})

    assert errors == {}
    assert [w.percent for w in spec.waves] == [10, 30, 60]
    assert spec.target.models == ("Tesla Model 3",)
    assert spec.eligibility.maintenance_windows[0].days == ("sat", "sun")
    assert spec.in_progress_timeout_s == 3600


def test_every_invalid_field_gets_its_own_message_keyed_by_the_field():
    spec, errors = build_spec(
        {
            **VALID_FORM,
            "name": " ",
            "release_version": None,
            "waves": "10%, lots",
            "vins": "5YJ3E1EA0PF00000X",
            "networks": [],
            "min_soc_pct": 130.0,
            "use_window": True,
            "window_start": time(2),
            "window_end": time(2),
            "window_days": ["mon"],
        }
    )

    assert spec is None
    assert set(errors) == {"name", "release_version", "waves", "vins", "networks", "min_soc_pct", "window"}
    assert "lots" in errors["waves"] and "5YJ3E1EA0PF00000X" in errors["vins"]


def test_wave_percentages_over_100_and_fractional_vehicle_counts_are_rejected():
    with pytest.raises(ValueError, match="add up to 120%"):
        parse_waves("60%, 60%", 90, 10)
    with pytest.raises(ValueError, match="whole number"):
        parse_waves("2.5", 90, 10)
    assert parse_waves("50, 100%", 90, 10)[0] == {
        "size": 50,
        "success_threshold_pct": 90,
        "error_threshold_pct": 10,
    }


def test_a_scheduled_start_without_a_time_zone_is_a_field_error():
    _, errors = build_spec({**VALID_FORM, "start_at": datetime(2026, 12, 1, 2, 0)})
    assert "start_at" in errors


def test_the_fleet_frame_marks_offline_vehicles_offline_whatever_their_last_drive_state():
    raw = pd.DataFrame([
        {"vin": "B", "online": False, "drive_state": "driving", "soc_pct": 5.0, "model": "X"},
        {"vin": "A", "online": True, "drive_state": "charging", "soc_pct": 85.0, "model": "Y"},
        {"vin": "C", "online": True, "drive_state": None, "soc_pct": None},
    ])  # fmt: skip

    fleet = normalize_fleet(raw)

    assert fleet["vin"].tolist() == ["A", "B", "C"]
    assert fleet["status"].tolist() == ["charging", "offline", "offline"]
    assert fleet["battery"].tolist() == ["high", "critical", "unknown"]
    kpis = fleet_kpis(fleet)
    assert (kpis.vehicles, kpis.online, kpis.needs_attention) == (3, 2, 1)
    assert kpis.battery_avg == pytest.approx(45.0)


def test_the_vectorised_battery_bands_match_the_domain_rule_at_every_edge():
    soc = pd.Series([0, 9.99, 10, 29.9, 30, 79.99, 80, 100, None])
    expected = [battery_category(s).value for s in soc.dropna()] + ["unknown"]
    assert battery_categories(soc).tolist() == expected


def test_fleet_filters_combine_and_an_empty_filter_matches_everything():
    fleet = normalize_fleet(sample_fleet(300, seed=3))
    model = fleet["model"].iloc[0]

    assert len(filter_fleet(fleet)) == 300
    narrowed = filter_fleet(fleet, models=[model], regions=["eu-central"], versions=["1.2.0"])
    assert set(narrowed["model"]) <= {model} and set(narrowed["region"]) <= {"eu-central"}
    assert len(filter_fleet(fleet, text=fleet["vin"].iloc[7][:11])) >= 1


def test_versions_sort_semantically_not_as_text():
    assert sorted(["3.10.0", "3.2.0", "10.0.0", "3.4.1"], key=version_key) == [
        "3.2.0",
        "3.4.1",
        "3.10.0",
        "10.0.0",
    ]


def test_synthetic_fleets_have_valid_vins_whose_wmi_matches_the_make():
    fleet = sample_fleet(2000, seed=1)
    assert fleet["vin"].is_unique
    for vin, make in zip(fleet["vin"], fleet["make"], strict=True):
        assert validate_vin(vin) == vin and MAKE_BY_WMI[vin[:3]] == make


def test_the_offline_map_draws_every_located_vehicle_in_view_on_a_geo_scatter():
    fleet = normalize_fleet(sample_fleet(500, seed=2))
    fleet.loc[:9, "lat"] = float("nan")
    in_europe = (fleet["region"].str.startswith("eu-") & fleet["lat"].notna()).sum()

    figure = offline_map(fleet, "Battery", "Europe")

    assert {t.type for t in figure.data} == {"scattergeo"}
    # Only the vehicles in the view are sent: the American ones would be drawn off the map.
    assert sum(len(t.lat) for t in figure.data) == in_europe > 100
    # A continent gets the coarse outlines (world_110m.json draws in a fraction of world_50m's time).
    assert figure.layout.geo.scope == "europe" and figure.layout.geo.resolution == 110


def running_campaign() -> Campaign:
    """Wave 2 of 2 running: 4 succeeded, 1 failed, 2 downloading, 3 pending."""
    manifest = FirmwareManifest(
        version="2.0.0", sha256="a" * 64, size_bytes=10, models=("M",), artifact_key="k",
        created_at=datetime(2026, 11, 26, 9, tzinfo=UTC), created_by="alice",
    )  # fmt: skip
    return Campaign(
        campaign_id="c1",
        spec=CampaignSpec(
            name="Rollout", release_version="2.0.0", waves=(WaveSpec(percent=50), WaveSpec(percent=50))
        ),
        release=FirmwareRelease(manifest=manifest, signature="c2ln", key_id="key"),
        state=CampaignState.RUNNING,
        current_wave=1,
        wave_sizes=(4, 6),
        counters=CampaignCounters(
            states={"SUCCEEDED": 4, "FAILED": 1, "DOWNLOADING": 2, "PENDING": 3},
            wave_succeeded=[3, 1],
            wave_failed=[1, 0],
            wave_waiting=[0, 3],
        ),
        created_at=datetime(2026, 11, 26, 10, tzinfo=UTC),
        created_by="alice",
        updated_at=datetime(2026, 11, 26, 10, tzinfo=UTC),
    )


def test_the_one_campaign_summary_reads_the_campaign_counters():
    row = running_campaign().summary()
    assert (row["name"], row["total"], row["progress"], row["current_wave"], row["active"]) == (
        "Rollout", 10, 0.5, 2, True,
    )  # fmt: skip
    assert (row["wave"], row["release"], row["success_rate"]) == ("2/2", "2.0.0", 80.0)


def test_wave_progress_and_funnel_count_each_stage_reached():
    campaign = running_campaign()
    waves = wave_progress(campaign)
    assert waves[["wave", "size", "succeeded", "failed", "pending", "status"]].values.tolist() == [
        [1, 4, 3, 1, 0, "done"],
        [2, 6, 1, 0, 5, "current"],
    ]
    stages = dict(funnel(campaign.counters).values.tolist())
    assert stages["ELIGIBLE"] == 7 and stages["DOWNLOADING"] == 7 and stages["SUCCEEDED"] == 4


def test_deferral_reasons_are_grouped_by_rule_and_failures_by_error_code():
    deps = pd.DataFrame([
        {"state": "DEFERRED", "reason": "battery 12% < 30%"},
        {"state": "DEFERRED", "reason": "battery 18% < 30%"},
        {"state": "RETRY_SCHEDULED", "error_code": "DOWNLOAD_INTERRUPTED"},
        {"state": "AWAITING_INSTALL", "reason": "outside maintenance window 01:00-05:00 (local Wed 14:02)"},
        {"state": "AWAITING_CONSENT"},
        {"state": "SUCCEEDED"},
    ])  # fmt: skip

    assert reasons(deps).values.tolist() == [
        ["deferred", "battery below minimum", 2],
        ["failed", "DOWNLOAD_INTERRUPTED", 1],
        ["waiting to install", "outside maintenance window", 1],
        ["waiting to install", "the driver's consent", 1],
    ]


def test_the_alerts_feed_shows_recorded_alerts_and_only_the_alarm_changes_cloudwatch_notified():
    items = [
        {"pk": "alerts", "sk": "2026-11-26T10:00:00.000000Z#m1", "ts": "2026-11-26T10:00:00.000000Z",
         "kind": "auto-pause", "subject": "FleetOTA campaign c1 AUTO_PAUSED",
         "message": "wave 1: 3 of 10 failed", "severity": "warning", "campaign_id": "c1"},
    ]  # fmt: skip
    [row] = ledger_alerts(items)
    assert (row["kind"], row["detail"], row["source"]) == ("auto-pause", "wave 1: 3 of 10 failed", "c1")
    assert row["when"] == datetime(2026, 11, 26, 10, tzinfo=UTC)

    now = datetime.now(UTC)
    changes = [
        {"name": "lat", "when": now, "old": "OK", "new": "ALARM", "reason": "x"},
        {"name": "conn", "when": now, "old": "OK", "new": "INSUFFICIENT_DATA", "reason": ""},
        {"name": "errors", "when": now, "old": "ALARM", "new": "OK", "reason": "Threshold Crossed: 0 of 3"},
    ]
    assert [(a["subject"], a["kind"]) for a in history_alerts(changes)] == [
        ("lat → ALARM", "alarm"),
        ("errors → OK", "ok"),
    ]


def test_simulator_options_are_validated_before_anything_is_started(tmp_path):
    with pytest.raises(ValidationError, match="fleet size"):
        SimulatorOptions(vehicles=0).validate()
    with pytest.raises(ValidationError, match="fault rate"):
        SimulatorOptions(fault_rate=1.0).validate()
    assert SimulatorOptions(vehicles=5, seed=7).argv()[:2] == ["--vehicles", "5"]

    (tmp_path / "simulator.pid").write_text("999999999")  # no such process
    status = simulator_status(tmp_path)
    assert not status.running and status.pid is None
