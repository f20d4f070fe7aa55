"""Every dashboard page rendered by Streamlit's AppTest against the local stack, empty and with data."""

from __future__ import annotations

import base64
import gzip
import json
import re
import socket
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from fleetota_core import composition
from fleetota_core.adapters.fleet_snapshot import time_bound_key, write_fleet_snapshot
from fleetota_core.domain.campaign import CampaignSpec
from fleetota_core.domain.telemetry import OtaReport, OtaStatus
from fleetota_core.local.demo import ensure_demo_release
from fleetota_core.local.sample_fleet import sample_snapshot_rows
from fleetota_core.services.campaigns.create import (
    campaign_history,
    create_campaign,
    get_campaign,
    list_campaigns,
)
from fleetota_core.services.campaigns.releases import publish_release
from fleetota_core.services.campaigns.reports import apply_ota_reports
from fleetota_core.services.campaigns.tick import run_tick
from fleetota_core.services.ingest.fleet_health import publish_fleet_health
from simulator.fleet import fleet_definition, generate_fleet, write_fleet_file
from simulator.record import encode
from simulator.vehicle_keys import register_fleet
from tests.integration.test_campaign_services import MODEL, seed_vehicles

if TYPE_CHECKING:
    from tests.integration.conftest import LocalStack

APP = "../../streamlit_app.py"
PAGES = (
    "pages/overview.py",
    "pages/fleet_map.py",
    "pages/vehicles.py",
    "pages/campaigns.py",
    "pages/firmware.py",
    "pages/compliance.py",
    "pages/monitoring.py",
    "pages/simulator.py",
)
TITLES = {
    "pages/overview.py": "Fleet overview",
    "pages/fleet_map.py": "Fleet map",
    "pages/vehicles.py": "Vehicles",
    "pages/campaigns.py": "Campaigns",
    "pages/firmware.py": "Firmware",
    "pages/compliance.py": "Compliance",
    "pages/monitoring.py": "Monitoring",
    "pages/simulator.py": "Simulator",
}


@pytest.fixture
def dashboard(stack: LocalStack, monkeypatch: pytest.MonkeyPatch, tmp_path) -> LocalStack:
    return prepare_dashboard(stack, monkeypatch, tmp_path)


def prepare_dashboard(stack: LocalStack, monkeypatch: pytest.MonkeyPatch, tmp_path) -> LocalStack:
    """The stack, with the dashboard's process-wide caches emptied and no demo fleet started."""
    monkeypatch.setenv("FLEETOTA_DEMO_FLEET", "0")
    monkeypatch.chdir(tmp_path)  # simulator pid/log files land here, not in the repo
    st.cache_data.clear()
    st.cache_resource.clear()
    return stack


def seed_fleet(stack: LocalStack, count: int = 40, fleet: list | None = None) -> list:
    """Telemetry through the real pipeline: a gzip NDJSON batch in S3, drained by the processor."""
    fleet = generate_fleet(count, 11) if fleet is None else fleet
    register_fleet(stack.clients, stack.resources, fleet)  # provisioned before they report
    now = time.time()
    lines = []
    for vehicle in fleet:
        vehicle.seq += 1
        lines.append(encode(vehicle, now - 5).encode())
    stack.clients.s3.put_object(
        Bucket=stack.resources.telemetry_bucket,
        Key=f"raw/{datetime.now(UTC):dt=%Y-%m-%d/hour=%H}/apptest-{fleet[0].vin}-{fleet[0].seq}.ndjson.gz",
        Body=gzip.compress(b"\n".join(lines) + b"\nnot json\n"),
    )
    stack.runtime.drain(timeout=30)
    return fleet


def update_manager_tick(stack: LocalStack) -> None:
    """What the update manager's schedule runs: the campaign tick, then the fleet snapshot and metrics."""
    with stack.runtime.emf_forwarded():  # the metrics leave as EMF lines, as from the handler
        run_tick(stack.ports)
        publish_fleet_health(stack.clients, stack.resources)


def seed_campaign(stack: LocalStack, fleet: list) -> str:
    model = fleet[0].model
    publish_release(b"fw" * 5000, "9.0.0", [model], [], None, "test", "alice", stack.ports)
    stack.runtime.fire_schedule()  # the update manager: the fleet snapshot and fleet metrics
    from fleetota_core.domain.campaign import CampaignSpec
    from fleetota_core.services.campaigns.create import create_campaign

    spec = CampaignSpec(name="apptest rollout", release_version="9.0.0")
    campaign = create_campaign(spec, "alice", stack.ports)
    update_manager_tick(stack)
    return campaign.campaign_id


def render(page: str) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    if page != PAGES[0]:
        at.switch_page(page)
        at.run()
    return at


def assert_clean(at: AppTest, page: str) -> None:
    assert not at.exception, [e.value for e in at.exception]
    assert [t.value for t in at.title][:1] == [TITLES[page]]
    # A backend failure would show as an error banner; none is expected on a healthy stack.
    assert not [e.value for e in at.error if "Could not load" in e.value or "unreachable" in e.value]


@pytest.mark.parametrize("page", PAGES)
def test_each_page_renders_on_an_empty_backend_and_says_what_to_do_next(dashboard, page):
    at = render(page)

    assert_clean(at, page)
    if page in ("pages/overview.py", "pages/fleet_map.py", "pages/vehicles.py"):
        assert any("Simulator" in i.value for i in at.info), "empty state should point at the simulator"


@pytest.mark.slow
def test_each_page_renders_with_a_fleet_a_release_and_a_running_campaign(dashboard):
    fleet = seed_fleet(dashboard)
    campaign_id = seed_campaign(dashboard, fleet)

    for page in PAGES:
        at = render(page)
        assert_clean(at, page)
        if page == "pages/overview.py":
            assert at.metric[0].value == f"{len(fleet):,}"
        if page == "pages/campaigns.py":
            assert campaign_id in at.selectbox(key="campaign_pick").value
        if page == "pages/vehicles.py":
            assert at.selectbox(key="veh_vin").value in {v.vin for v in fleet}
            assert at.get("plotly_chart"), "the selected vehicle's recent telemetry is charted"
        if page == "pages/monitoring.py":
            samples = " ".join(c.value for c in at.code)
            assert "malformed_json" in samples, "the quarantined 'not json' line is shown with its reason"
        if page == "pages/firmware.py":
            assert "9.0.0" in at.dataframe[0].value["version"].tolist()
        if page == "pages/compliance.py":
            report = at.dataframe[0].value  # the release report of 9.0.0: its campaign's vehicles
            assert set(report["campaign_id"]) == {campaign_id}
            assert set(report["status"]) <= {"pending", "running"}


def test_the_compliance_page_shows_a_vins_history_what_it_ran_on_a_day_and_offers_downloads(dashboard):
    seed_vehicles(dashboard, 3)  # parked, charged and online: the tick notifies them
    publish_release(b"fw" * 5000, "9.0.0", [MODEL], [], None, "test", "alice", dashboard.ports)
    campaign = create_campaign(
        CampaignSpec(name="audit me", release_version="9.0.0"), "alice", dashboard.ports
    )
    run_tick(dashboard.ports)
    took = next(d for d in dashboard.ports.deployments.for_campaign(campaign.campaign_id) if d.notified_at)
    installed_at = datetime.now(UTC)
    ota = OtaReport(campaign_id=campaign.campaign_id, deployment_id=took.deployment_id,
                    status=OtaStatus.SUCCEEDED, target_version="9.0.0")  # fmt: skip
    apply_ota_reports([(took.vin, ota)], dashboard.ports, now=installed_at)

    at = render("pages/compliance.py")
    assert any("Enter a VIN" in i.value for i in at.info), "an empty VIN says what to do"
    at.text_input(key="compliance_vin").input(took.vin.lower())
    at.date_input(key="compliance_day").set_value(installed_at.date().replace(year=installed_at.year - 1))
    at.run()

    assert_clean(at, "pages/compliance.py")
    history = at.dataframe[0].value
    ran = history[history["kind"] == "ran"]
    assert ran["version"].tolist() == [took.from_version, "9.0.0"]
    assert ran["campaign_id"].tolist()[1] == campaign.campaign_id
    said = [re.sub(r"\\(.)", r"\1", s.value) for s in at.success]
    assert any(f"ran **{took.from_version}**" in s for s in said), said
    assert at.get("plotly_chart"), "the versions are drawn on a timeline"
    assert [b.label for b in at.get("download_button")][:2] == ["Download CSV", "Download JSON"]

    at.text_input(key="compliance_vin").input("NOT-A-VIN")
    at.run()
    assert any("not a VIN" in re.sub(r"\\(.)", r"\1", e.value) for e in at.error)


def _fill_campaign_form(at: AppTest, **values) -> None:
    at.text_input(key="cf_name").input(values.get("name", ""))
    if values.get("release"):
        at.selectbox(key="cf_release").select(values["release"])
    at.text_input(key="cf_waves").input(values.get("waves", "50%, 50%"))
    at.text_area(key="cf_vins").input(values.get("vins", ""))


def test_the_campaign_form_shows_an_error_under_each_invalid_field(dashboard):
    fleet = seed_fleet(dashboard, 10)
    publish_release(b"x" * 100, "9.1.0", [fleet[0].model], [], None, "", "alice", dashboard.ports)
    at = render("pages/campaigns.py")

    _fill_campaign_form(at, name="", release="9.1.0", waves="10%, lots", vins="NOT-A-VIN")
    at.button(key="cf_preview_button").click()
    at.run()

    # AppTest sees the Markdown source; messages that echo input escape it (views.text.plain).
    errors = re.sub(r"\\(.)", r"\1", " | ".join(e.value for e in at.error))
    assert "give the campaign a name" in errors
    assert "'lots' is not a wave" in errors
    assert "NOT-A-VIN" in errors
    assert "highlighted field" in errors
    assert list_campaigns(dashboard.ports) == []


def test_a_release_rewritten_in_the_bucket_is_refused_on_the_form_with_the_reason(dashboard):
    fleet = seed_fleet(dashboard, 10)
    release = publish_release(b"z" * 300, "9.3.0", [fleet[0].model], [], None, "", "alice", dashboard.ports)
    # An attacker with bucket access doubles the size in the signed manifest, keeping the signature.
    forged = release.model_copy(update={"manifest": release.manifest.model_copy(update={"size_bytes": 600})})
    dashboard.clients.s3.put_object(
        Bucket=dashboard.resources.firmware_bucket,
        Key="releases/9.3.0.json",
        Body=forged.model_dump_json().encode(),
    )
    at = render("pages/campaigns.py")
    _fill_campaign_form(at, name="forged", release="9.3.0")
    at.button(key="cf_preview_button").click()
    at.run()
    errors = re.sub(r"\\(.)", r"\1", " | ".join(e.value for e in at.error))
    assert "release 9.3.0: its manifest" in errors and "does not verify with the image key" in errors
    assert list_campaigns(dashboard.ports) == []


def test_a_valid_campaign_form_previews_then_launches_the_campaign_as_the_operator(dashboard, monkeypatch):
    monkeypatch.setenv("FLEETOTA_OPERATOR", "carol")  # the sidebar's default operator name
    fleet = seed_fleet(dashboard, 12)
    model = fleet[0].model
    publish_release(b"y" * 2048, "9.2.0", [model], [], None, "", "alice", dashboard.ports)
    at = render("pages/campaigns.py")
    _fill_campaign_form(at, name="UI rollout", release="9.2.0", waves="50%, 50%")

    at.button(key="cf_preview_button").click()
    at.run()
    assert not at.exception
    matched = next(m for m in at.metric if m.label == "Matched vehicles")
    expected = sum(1 for v in fleet if v.model == model and v.firmware_version != "9.2.0")
    assert matched.value == f"{expected:,}"
    assert list_campaigns(dashboard.ports) == []

    at.button(key="cf_launch_button").click()
    at.run()

    assert not at.exception, [e.value for e in at.exception]
    campaigns = list_campaigns(dashboard.ports)
    assert [(c.spec.name, c.created_by, c.total) for c in campaigns] == [("UI rollout", "carol", expected)]
    assert any("created" in s.value for s in at.success)


def test_in_aws_mode_without_sign_in_configured_the_dashboard_is_read_only(dashboard, monkeypatch):
    monkeypatch.setenv("FLEETOTA_MODE", "aws")
    monkeypatch.setenv("FLEETOTA_ENDPOINT_URL", dashboard.endpoint_url)
    for field, value in dashboard.resources.as_dict().items():
        monkeypatch.setenv(f"FLEETOTA_{field.upper()}", value)  # as the Lambda environment names them

    at = render("pages/overview.py")

    assert not at.exception
    assert any("AWS" in m.value for m in at.sidebar.markdown)
    assert any("Read-only" in c.value for c in at.sidebar.caption)
    for page, label in (("pages/firmware.py", "Sign and publish"), ("pages/campaigns.py", "Launch campaign"),
                        ("pages/simulator.py", "Start simulator")):  # fmt: skip
        at.switch_page(page)
        at.run()
        assert not at.exception
        assert next(b for b in at.button if b.label == label).disabled, label
        assert any("Read-only" in i.value for i in at.info)


@pytest.mark.parametrize("page", PAGES)
def test_when_the_backend_is_unreachable_a_banner_says_so_and_no_traceback_is_shown(
    dashboard, monkeypatch, page
):
    closed_port = socket.socket()
    closed_port.bind(("127.0.0.1", 0))  # bound, never listening: connections are refused at once
    monkeypatch.setenv("FLEETOTA_MODE", "aws")
    monkeypatch.setenv("FLEETOTA_ENDPOINT_URL", f"http://127.0.0.1:{closed_port.getsockname()[1]}")
    for field, value in dashboard.resources.as_dict().items():
        monkeypatch.setenv(f"FLEETOTA_{field.upper()}", value)
    try:
        at = render(page)
    finally:
        closed_port.close()

    assert not at.exception, [e.value for e in at.exception]
    if page != "pages/simulator.py":  # it reads no AWS data; its sidebar's alerts feed shows the banner
        errors = [e.value for e in at.error]
        assert any("unreachable" in e or "cannot reach" in e for e in errors), errors


def test_pausing_a_campaign_asks_for_confirmation_and_records_the_operator_and_reason(dashboard, monkeypatch):
    monkeypatch.setenv("FLEETOTA_OPERATOR", "dave")
    fleet = seed_fleet(dashboard, 12)
    campaign_id = seed_campaign(dashboard, fleet)
    at = render("pages/campaigns.py")

    at.button(key="act_pause").click()
    at.run()
    assert get_campaign(campaign_id, dashboard.ports).state.value == "RUNNING"
    assert any("Pause campaign" in w.value for w in at.warning), "a confirmation is shown first"

    at.text_input(key="confirm_reason_pause").input("battery complaints")
    at.button(key="confirm_pause").click()
    at.run()

    assert not at.exception, [e.value for e in at.exception]
    assert get_campaign(campaign_id, dashboard.ports).state.value == "PAUSED"
    audit = campaign_history(campaign_id, dashboard.ports)
    assert (audit[0]["action"], audit[0]["operator"], audit[0]["reason"]) == (
        "PAUSE",
        "dave",
        "battery complaints",
    )


def test_a_critical_campaign_from_the_form_waits_in_the_approval_queue_until_another_operator_approves(
    dashboard, monkeypatch
):
    monkeypatch.setenv("FLEETOTA_OPERATOR", "carol")
    fleet = seed_fleet(dashboard, 8)
    publish_release(b"z" * 2048, "9.3.0", [fleet[0].model], [], None, "", "alice", dashboard.ports)
    at = render("pages/campaigns.py")
    _fill_campaign_form(at, name="Brake controller fix", release="9.3.0", waves="100%")
    at.checkbox(key="cf_critical").check()
    at.button(key="cf_launch_button").click()
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    (campaign,) = list_campaigns(dashboard.ports)
    assert campaign.state.value == "AWAITING_APPROVAL" and campaign.spec.critical
    assert any("waits for approval" in i.value for i in at.info)

    def approve_as(operator: str) -> AppTest:
        monkeypatch.setenv("FLEETOTA_OPERATOR", operator)
        st.cache_data.clear()  # a new session would not share the form's cached campaign list
        at = render("pages/campaigns.py")
        assert any("Waiting for approval (1)" in m.value for m in at.markdown)
        at.button(key="act_approve").click()
        at.run()
        at.text_input(key="confirm_reason_approve").input("diff reviewed")
        at.button(key="confirm_approve").click()
        at.run()
        assert not at.exception, [e.value for e in at.exception]
        return at

    refused = approve_as("carol")
    assert any("four-eyes rule" in re.sub(r"\\(.)", r"\1", e.value) for e in refused.error)
    assert get_campaign(campaign.campaign_id, dashboard.ports).state.value == "AWAITING_APPROVAL"

    approve_as("erin")
    approved = get_campaign(campaign.campaign_id, dashboard.ports)
    assert (approved.state.value, approved.approved_by) == ("SCHEDULED", "erin")
    audit = campaign_history(campaign.campaign_id, dashboard.ports)
    assert (audit[0]["action"], audit[0]["operator"], audit[0]["reason"]) == (
        "APPROVE",
        "erin",
        "diff reviewed",
    )
    assert audit[0]["detail"] == {"requested_by": "carol", "approved_by": "erin"}


def test_resetting_local_data_asks_for_confirmation_then_empties_the_stack(dashboard, monkeypatch):
    monkeypatch.setenv("FLEETOTA_OPERATOR", "dave")
    seed_fleet(dashboard, 5)
    vehicles_table = dashboard.resources.vehicles_table
    at = render("pages/simulator.py")
    assert any("fleetota local stop" in c.value for c in at.caption), [c.value for c in at.caption]

    at.button(key="reset_local_data").click()
    at.run()
    assert dashboard.clients.dynamodb.scan(TableName=vehicles_table)["Count"] == 5
    assert any("saved state" in w.value for w in at.warning), "a confirmation is shown first"

    at.button(key="reset_confirm").click()
    at.run()

    assert not at.exception, [e.value for e in at.exception]
    assert dashboard.clients.dynamodb.scan(TableName=vehicles_table)["Count"] == 0
    assert any("moto reset" in s.value for s in at.success)


def write_fleet_definition(vehicles: list) -> None:
    """What the simulator writes with --fleet-file, where the dashboard looks for it (cwd/.fleetota)."""
    write_fleet_file(Path(".fleetota") / "fleet.json", vehicles, seed=11)


def test_the_overview_and_vehicles_count_the_provisioned_fleet_with_never_reported_vehicles_apart(dashboard):
    # Given 10 vehicles that reported and a fleet definition of 15 (the same 10, then 5 silent ones)
    fleet = seed_fleet(dashboard, 10)
    provisioned = generate_fleet(15, 11)
    assert [v.vin for v in provisioned[:10]] == [v.vin for v in fleet]
    write_fleet_definition(provisioned)
    online = sum(1 for v in fleet if v.network.value != "NONE")

    at = render("pages/overview.py")

    assert not at.exception, [e.value for e in at.exception]
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Vehicles"] == "15"
    assert metrics["Never reported"] == "5"
    assert metrics["Online"] == f"{100 * online / 15:.1f} %"  # over the whole fleet, not the 10

    at.switch_page("pages/vehicles.py")
    at.run()
    table = at.dataframe[0].value
    assert len(table) == 15
    assert (table["status"] == "never reported").sum() == 5
    silent = at.dataframe[1].value  # the "provisioned, never reported" section
    assert sorted(silent["vin"]) == sorted(v.vin for v in provisioned[10:])


def test_vehicles_provisioned_in_the_registry_that_never_reported_are_listed_apart(dashboard):
    # Given 4 vehicles that reported and 3 more provisioned in the registry only (no fleet file)
    seed_fleet(dashboard, 4)
    silent = generate_fleet(7, 11)[4:]
    register_fleet(dashboard.clients, dashboard.resources, silent)

    at = render("pages/vehicles.py")

    assert not at.exception, [e.value for e in at.exception]
    assert any(e.label == "Provisioned, never reported: 3" for e in at.expander)
    listed = at.dataframe[1].value
    assert sorted(listed["vin"]) == sorted(v.vin for v in silent)
    assert set(listed["model"]) == {v.model for v in silent}  # identity from the registry


@pytest.mark.parametrize(
    ("page", "key"), [("pages/overview.py", "overview"), ("pages/campaigns.py", "campaigns")]
)
def test_the_demo_campaign_button_previews_the_prefilled_spec_then_confirm_creates_it(
    dashboard, monkeypatch, page, key
):
    monkeypatch.setenv("FLEETOTA_OPERATOR", "erin")
    fleet = seed_fleet(dashboard, 30)
    release = ensure_demo_release(dashboard.ports, fleet_definition(fleet))
    assert release is not None
    expected = sum(1 for v in fleet if v.model in release.manifest.models)
    at = render(page)

    at.button(key=f"{key}_demo_start").click()
    at.run()

    assert not at.exception, [e.value for e in at.exception]
    matched = next(m for m in at.metric if m.label == "Matched vehicles")
    assert matched.value == f"{expected:,}"
    assert any(m.label == "Eligible now" for m in at.metric)
    assert list_campaigns(dashboard.ports) == [], "a preview writes nothing"

    at.button(key=f"{key}_demo_confirm").click()
    at.run()

    assert not at.exception, [e.value for e in at.exception]
    campaigns = list_campaigns(dashboard.ports)
    assert len(campaigns) == 1
    campaign = campaigns[0]
    assert campaign.spec.name.startswith(f"Demo rollout {release.version}")
    assert (campaign.created_by, campaign.total) == ("erin", expected)
    assert [w.percent for w in campaign.spec.waves] == [10, 30, 60]
    assert any("Demo campaign created" in s.value for s in at.success)
    assert not any(b.key == f"{key}_demo_confirm" for b in at.button), "the preview is gone once created"


def test_a_continuous_campaign_shows_its_flag_and_who_joined_later_and_finishes_from_the_page(
    dashboard, monkeypatch
):
    monkeypatch.setenv("FLEETOTA_OPERATOR", "carol")
    monkeypatch.setattr(composition, "DELTA_SETTLE", timedelta(0))  # the feed need not wait for late deltas
    fleet = generate_fleet(9, 11)
    newcomer = next(v for v in fleet if sum(o.model == v.model for o in fleet) > 1)
    seed_fleet(dashboard, fleet=[v for v in fleet if v is not newcomer])
    publish_release(b"c" * 2048, "9.4.0", [newcomer.model], [], None, "", "alice", dashboard.ports)
    at = render("pages/campaigns.py")
    _fill_campaign_form(at, name="Always on", release="9.4.0", waves="100%")
    at.checkbox(key="cf_continuous").check()
    at.button(key="cf_launch_button").click()
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    (campaign,) = list_campaigns(dashboard.ports)
    assert campaign.spec.continuous
    update_manager_tick(dashboard)  # it starts
    seed_fleet(dashboard, fleet=[newcomer])  # provisioned mid-campaign, then it reports
    update_manager_tick(dashboard)  # it joins

    st.cache_data.clear()
    at = render("pages/campaigns.py")
    assert not at.exception, [e.value for e in at.exception]
    assert any("Continuous" in i.value and "1 joined after creation" in i.value for i in at.info)
    listed = at.dataframe[0].value
    assert listed["continuous"].tolist() == [True] and listed["joined_later"].tolist() == [1]

    at.button(key="act_finish").click()
    at.run()
    at.text_input(key="confirm_reason_finish").input("superseded by 9.5.0")
    at.button(key="confirm_finish").click()
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert get_campaign(campaign.campaign_id, dashboard.ports).enrolment_closed
    audit = campaign_history(campaign.campaign_id, dashboard.ports)
    assert [a["action"] for a in audit[:2]] == ["FINISH", "ENROL"]
    assert audit[1]["detail"]["vins"] == [newcomer.vin]


def test_the_firmware_page_lists_a_releases_deltas_and_the_campaign_page_shows_the_bytes_they_saved(
    dashboard,
):
    from fleetota_core.domain.campaign import CampaignSpec
    from fleetota_core.domain.telemetry import OtaDelivery, OtaReport, OtaStatus
    from fleetota_core.services.campaigns.create import create_campaign, list_deployments
    from fleetota_core.services.campaigns.reports import apply_ota_reports
    from fleetota_core.services.delta.publish import publish_with_deltas
    from simulator.firmware_images import catalogue_image

    seed_vehicles(dashboard, 3)  # parked, charged, online, on 1.0.0: the tick notifies them
    publish_release(catalogue_image("1.0.0"), "1.0.0", [MODEL], [], None, "", "alice", dashboard.ports)
    release, _ = publish_with_deltas(
        catalogue_image("2.0.0"), "2.0.0", [MODEL], [], None, "", "alice", dashboard.ports, deltas_from=1
    )
    campaign = create_campaign(CampaignSpec(name="deltas", release_version="2.0.0"), "alice", dashboard.ports)
    update_manager_tick(dashboard)
    delta = release.deltas[0]
    on_source = next(
        d for d in list_deployments(campaign.campaign_id, dashboard.ports) if d.state.value == "NOTIFIED"
    )
    report = OtaReport(
        campaign_id=campaign.campaign_id, deployment_id=on_source.deployment_id, status=OtaStatus.SUCCEEDED,
        target_version=release.version,
        delivery=OtaDelivery(artifact="delta", downloaded_bytes=delta.manifest.size_bytes),
    )  # fmt: skip
    apply_ota_reports([(on_source.vin, report)], dashboard.ports)

    at = render("pages/firmware.py")
    assert_clean(at, "pages/firmware.py")
    deltas = at.dataframe[1].value
    assert set(deltas["from_version"]) == {d.source_version for d in release.deltas}
    assert set(deltas["signature"]) == {"valid"} and (deltas["smaller_x"] > 5).all()

    at = render("pages/campaigns.py")
    assert_clean(at, "pages/campaigns.py")
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["From deltas"] == "1" and metrics["Full images"] == "0"
    saved = release.manifest.size_bytes - delta.manifest.size_bytes
    assert metrics["Bytes saved"] == f"{saved / 1000:,.1f} kB"


def test_the_campaign_page_charts_the_health_gates_canary_vs_control_with_the_verdict(dashboard):
    from datetime import timedelta

    from fleetota_core.domain.health_gate import compare, judge
    from fleetota_core.domain.vehicle_health import Signal

    fleet = seed_fleet(dashboard, 12)
    model = fleet[0].model
    publish_release(b"fw" * 5000, "9.0.0", [model], [], None, "test", "alice", dashboard.ports)
    spec = CampaignSpec(name="gated rollout", release_version="9.0.0", soak_minutes=30)
    campaign = create_campaign(spec, "alice", dashboard.ports)
    canary = {s: [0.0] * 100 for s in Signal} | {Signal.DTC: [4.0] * 40 + [0.0] * 80}
    control = {s: [0.0] * 400 for s in Signal} | {Signal.DTC: [4.0] * 10 + [0.0] * 390}
    verdict = judge(canary, control)
    assert compare(Signal.DTC, canary[Signal.DTC], control[Signal.DTC]).p_value < 0.01
    now = datetime.now(UTC)
    from fleetota_core.domain.health_gate import GatePhase, GateStatus

    gate = GateStatus(
        wave=0, phase=GatePhase.FAILED, soak_started_at=now - timedelta(minutes=30), soak_ends_at=now,
        give_up_at=now, canary_vehicles=120, control_vehicles=400, verdict=verdict.verdict,
        score=verdict.score, metrics=verdict.metrics, evidence=verdict.evidence, checked_at=now,
    )  # fmt: skip
    stored = get_campaign(campaign.campaign_id, dashboard.ports)
    assert dashboard.ports.campaigns.update(
        campaign.campaign_id, stored.version, {"gate": gate, "state_reason": gate.summary()}
    )

    at = render("pages/campaigns.py")
    assert not at.exception, [e.value for e in at.exception]
    texts = " ".join(m.value for m in at.markdown).replace("\\", "")  # as rendered, without escapes
    assert "Health gate" in texts
    assert "FAILED (MARGINAL, score 75): canary DTC rate 1.3 % per hour (n=120) vs control 0.10" in texts
    charts = [c for c in at.get("plotly_chart") if "canary" in c.proto.spec]
    assert charts, "the gate's canary vs control chart is drawn"
    spec_json = charts[0].proto.spec
    assert "DTC rate (% per hour)" in spec_json and "control" in spec_json


def write_sample_snapshot(stack: LocalStack, vehicles: int) -> dict:
    """A synthetic fleet written straight into the fleet snapshot the pages read (no simulation)."""
    rows = sample_snapshot_rows(vehicles, seed=3)
    now = datetime.now(UTC)
    write_fleet_snapshot(
        stack.clients.s3, stack.resources.telemetry_bucket, rows, now, time_bound_key(now), now
    )
    return rows


def figure_of(at: AppTest, index: int = 0) -> dict:
    return json.loads(at.get("plotly_chart")[index].proto.spec)


def _array(values: list | dict) -> list:
    if isinstance(values, dict):  # plotly sends numeric arrays as base64 typed arrays
        return np.frombuffer(base64.b64decode(values["bdata"]), dtype=values["dtype"]).tolist()
    return values


def markers_of(figure: dict) -> int:
    return sum(len(_array(trace.get("lat", []))) for trace in figure["data"])


def test_the_map_of_a_large_fleet_draws_cells_and_zooming_into_a_cell_draws_its_vehicles(dashboard):
    # Given a fleet snapshot of 6,000 vehicles in eight metros (more than the map draws one by one)
    rows = write_sample_snapshot(dashboard, 6_000)

    at = render("pages/fleet_map.py")

    assert_clean(at, "pages/fleet_map.py")
    caption = next(c.value for c in at.caption if "of 6,000 vehicles" in c.value)
    assert "6,000 of them in this view, drawn as" in caption and "cells" in caption
    cells = markers_of(figure_of(at))
    assert 0 < cells < 100, "the browser gets a few cells, not 6,000 markers"
    counts = [c[0] for trace in figure_of(at)["data"] for c in trace["customdata"]]
    assert sum(counts) == 6_000

    # When the operator zooms into the busiest cell, then again while it is still drawn as cells
    depth = 0
    while _has_selectbox(at, f"map_zoom_{depth}"):
        label = at.selectbox(key=f"map_zoom_{depth}").options[0]
        at.selectbox(key=f"map_zoom_{depth}").select_index(0).run()
        depth += 1
        assert not at.exception, [e.value for e in at.exception]
        assert depth < 5, "each zoom narrows the view"

    # Then the last cell's vehicles are drawn one by one, with their VINs on hover
    figure = figure_of(at)
    vins = [vin for trace in figure["data"] for vin in trace["hovertext"]]
    assert depth >= 1 and len(vins) == markers_of(figure) == int(
        label.split("·")[1].split()[0].replace(",", "")
    )
    assert set(vins) <= set(rows)
    assert any("one marker per vehicle" in c.value for c in at.caption)

    # And going back to the whole fleet draws the cells again
    at.button(key="map_zoom_reset").click().run()
    assert markers_of(figure_of(at)) == cells


def _has_selectbox(at: AppTest, key: str) -> bool:
    return any(s.key == key for s in at.selectbox)


def test_the_vehicles_table_gets_one_filtered_page_of_rows_from_the_server(dashboard):
    # Given a fleet snapshot of 250 vehicles
    rows = write_sample_snapshot(dashboard, 250)
    vins = sorted(rows)

    at = render("pages/vehicles.py")

    # Then the browser gets the first 100 rows in VIN order, and the pager says how many there are
    assert_clean(at, "pages/vehicles.py")
    assert at.dataframe[0].value["vin"].tolist() == vins[:100]
    assert any("250 of 250 vehicles; rows 1-100 shown" in c.value for c in at.caption)
    assert len(at.selectbox(key="veh_vin").options) == 100

    # When the operator turns to the third page
    at.number_input(key="veh_page").set_value(3).run()
    assert at.dataframe[0].value["vin"].tolist() == vins[200:]

    # When they filter by one model, the page is cut from the matches (the last one there is)
    model = rows[vins[0]]["model"]
    matching = [vin for vin in vins if rows[vin]["model"] == model]
    at.multiselect(key="veh_models").set_value([model]).run()
    assert not at.exception, [e.value for e in at.exception]
    shown = at.dataframe[0].value
    assert set(shown["model"]) == {model} and set(shown["vin"]) <= set(matching)
    assert any(f"{len(matching):,} of 250 vehicles" in c.value for c in at.caption)

    # When they search one VIN, that vehicle is the one row and the one in the detail view
    at.text_input(key="veh_search").set_value(matching[-1]).run()
    assert at.dataframe[0].value["vin"].tolist() == [matching[-1]]
    assert at.selectbox(key="veh_vin").value == matching[-1]
