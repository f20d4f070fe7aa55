"""The dashboard in a real Chromium against ``streamlit run`` on the local stack, with no internet.

Visits every page, starts the simulator, publishes a firmware release and launches a campaign
through the UI, drives the update manager and watches the campaign move, saving a screenshot per step.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING

from fleetota_core.adapters.clients import client_factory
from fleetota_core.adapters.resources import resolve_resources
from fleetota_core.composition import campaign_ports
from fleetota_core.local.runtime import LocalRuntime
from fleetota_core.services.campaigns.create import list_campaigns
from fleetota_core.settings import Settings
from fleetota_core.views.firmware import releases_frame
from fleetota_core.views.fleet import fleet_frame

if TYPE_CHECKING:
    from tests.e2e.conftest import Dashboard

SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"
FLEET_SIZE = 40
RELEASE = "9.9.0"


def settle(page, quiet_s: float = 1.0, timeout_s: float = 45) -> None:
    """Wait until the page has a title and Streamlit has stopped running scripts for ``quiet_s``."""
    page.wait_for_selector("h1", timeout=timeout_s * 1000)
    status = page.locator("[data-testid='stStatusWidget']")
    # Charts load their JavaScript lazily and show a skeleton meanwhile.
    loading = page.locator("[data-testid='stSkeleton'], .stSkeleton")
    deadline, calm_since = time.monotonic() + timeout_s, None
    while time.monotonic() < deadline:
        if (status.count() and status.first.is_visible()) or loading.count():
            calm_since = None
        elif calm_since is None:
            calm_since = time.monotonic()
        elif time.monotonic() - calm_since >= quiet_s:
            return
        time.sleep(0.2)


def shot(page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def wait_for_text(page, text: str, shot_name: str, timeout_s: float = 30) -> None:
    """Wait for ``text``; if it never shows, fail with what the page said instead, and a screenshot."""
    deadline = time.monotonic() + timeout_s
    while not page.get_by_text(text, exact=False).count():
        if time.monotonic() > deadline:
            shot(page, shot_name)
            alerts = page.locator("[data-testid='stAlert'], [data-testid='stException']").all_inner_texts()
            raise AssertionError(f"{text!r} not shown within {timeout_s:g} s; the page's messages: {alerts}")
        time.sleep(0.25)


def assert_no_error_banner(page) -> None:
    assert page.locator("[data-testid='stException']").count() == 0
    banners = page.locator("[data-testid='stAlertContentError']").all_inner_texts()
    assert not [b for b in banners if "Could not load" in b or "unreachable" in b], banners


def wait_for(predicate, timeout_s: float, what: str, every_s: float = 1.0):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every_s)
    raise AssertionError(f"timed out after {timeout_s:g} s waiting for {what}")


def test_an_operator_runs_a_rollout_from_the_browser_with_no_internet(dashboard: Dashboard, browser):
    settings = Settings(local_port=int(dashboard.env["FLEETOTA_LOCAL_PORT"]))
    clients = client_factory(settings)
    resources = resolve_resources(settings, clients)
    ports = campaign_ports(clients, resources)
    page = browser.new_page(viewport={"width": 1500, "height": 1800})
    outside: list[str] = []
    topojson: list[str] = []
    page.on("request", lambda r: outside.append(r.url) if not r.url.startswith(dashboard.url) else None)
    page.on("request", lambda r: topojson.append(r.url) if "/app/static/topojson/" in r.url else None)

    # A fresh server whose first visitor opens a page URL still gets the frame (sidebar, backend).
    page.goto(f"{dashboard.url}/fleet_map")
    settle(page)
    assert page.get_by_text("No vehicles to show yet", exact=False).is_visible()
    assert page.locator("[data-testid='stSidebar']").get_by_role("link", name="Campaigns").is_visible()

    # Empty backend first: the landing page shows the backend and says what to do next.
    page.goto(dashboard.url)
    settle(page)
    assert page.get_by_text("Local stack", exact=False).first.is_visible()
    assert page.get_by_text("No vehicles have reported yet", exact=False).is_visible()
    shot(page, "01-overview-empty")

    # Start the simulator from its page.
    page.goto(f"{dashboard.url}/simulator")
    settle(page)
    page.get_by_role("spinbutton", name="Vehicles").fill(str(FLEET_SIZE))
    page.get_by_role("spinbutton", name="Interval (s)").fill("2")
    page.get_by_role("button", name="Start simulator").click()
    page.get_by_text("Running (pid", exact=False).wait_for(timeout=20_000)
    wait_for(lambda: len(fleet_frame(clients, resources)) >= FLEET_SIZE * 0.8, 60, "the fleet to report")
    page.reload()
    settle(page)
    shot(page, "02-simulator")

    def dashboard_sees_fleet() -> bool:
        # The fleet read model is cached for 15 s, so the empty fleet seen above may still be served.
        page.goto(dashboard.url)
        settle(page)
        vehicles = page.locator("[data-testid='stMetric']", has_text="Vehicles").first.inner_text()
        return vehicles.split()[-1] != "0"

    wait_for(dashboard_sees_fleet, 45, "the dashboard to show the fleet", every_s=3)

    for path, name in (("", "03-overview"), ("fleet_map", "04-fleet-map"), ("vehicles", "05-vehicles"),
                       ("monitoring", "06-monitoring")):  # fmt: skip
        page.goto(f"{dashboard.url}/{path}")
        settle(page)
        if path == "fleet_map":
            page.locator(".js-plotly-plot").first.wait_for(timeout=20_000)
            # Land outlines are drawn once the locally served topojson has loaded.
            page.locator(".js-plotly-plot .geo .land").first.wait_for(state="attached", timeout=20_000)
            assert page.locator(".js-plotly-plot .geo path.point").count() >= FLEET_SIZE * 0.5
        assert_no_error_banner(page)
        shot(page, name)
    # Outlines from this server: the coarse ones for the fleet's extent over two continents, the fine
    # ones for a view narrower than 20 degrees.
    assert any(u.endswith(("world_110m.json", "world_50m.json")) for u in topojson), topojson

    # Publish a firmware release through the upload form.
    page.goto(f"{dashboard.url}/firmware")
    settle(page)
    page.locator("input[type='file']").set_input_files(
        files=[
            {"name": "tcu-9.9.0.bin", "mimeType": "application/octet-stream", "buffer": b"\x7fFW" * 40_000}
        ]
    )
    # The uploader sends the file to the server on its own; a submit before it has arrived finds no
    # file. Streamlit lists the file's name once it is there.
    page.get_by_text("tcu-9.9.0.bin").wait_for(timeout=30_000)
    page.get_by_role("textbox", name="Version", exact=True).fill(RELEASE)
    page.get_by_label("Models").click()
    page.get_by_role("option").first.click()
    page.keyboard.press("Escape")
    # The model chosen shows as a tag and its list has closed: the form is complete before it is sent,
    # and the click reaches the button, not the closing list (a CI run's click was lost that way).
    page.locator("[data-testid='stMultiSelectTagsContainer'] [data-tag]").first.wait_for(timeout=10_000)
    page.get_by_role("listbox").wait_for(state="hidden", timeout=10_000)
    settle(page)
    page.get_by_role("button", name="Sign and publish").click()
    wait_for_text(page, f"Published firmware {RELEASE}", "07-firmware-not-published")
    settle(page)
    assert releases_frame(ports)[["version", "signature"]].values.tolist() == [[RELEASE, "valid"]]
    shot(page, "07-firmware")

    # Create a campaign: preview first, then launch.
    page.goto(f"{dashboard.url}/campaigns")
    settle(page)
    page.get_by_role("tab", name="New campaign").click()
    page.get_by_role("textbox", name="Name", exact=True).fill("E2E rollout")
    page.get_by_label("Firmware release").click()
    page.get_by_role("option", name=RELEASE).click()
    page.get_by_role("textbox", name="Waves").fill("50%, 50%")
    page.get_by_role("spinbutton", name="Min battery %").fill("0")
    page.get_by_text("Only parked vehicles").click()
    page.get_by_role("button", name="Preview").click()
    page.get_by_text("Matched vehicles").wait_for(timeout=30_000)
    settle(page)
    shot(page, "08-campaign-preview")
    page.get_by_role("button", name="Launch campaign").click()
    page.get_by_text("Campaign E2E rollout created", exact=False).wait_for(timeout=30_000)
    (campaign,) = list_campaigns(ports)
    assert (campaign.spec.name, campaign.created_by) == ("E2E rollout", "e2e-operator")

    # Drive the update manager (the local runtime's schedule fires only once a minute).
    runtime = LocalRuntime(settings, clients=clients)

    def moved():
        runtime.fire_schedule()
        (now,) = list_campaigns(ports)
        # Vehicles report download and install steps in their telemetry once they got their job.
        reported = now.counters.count("DOWNLOADING", "VERIFYING", "INSTALLING", "SUCCEEDED", "FAILED")
        return now if reported > 0 else None

    moving = wait_for(moved, 90, "vehicles to report OTA progress", every_s=3)
    page.goto(f"{dashboard.url}/campaigns")
    settle(page)
    page.get_by_text("Deployment funnel").first.wait_for(timeout=20_000)
    settle(page)
    shot(page, "09-campaign-progress")
    heading = page.locator("h3", has_text="E2E rollout").first.inner_text()
    assert moving.state.value in heading, heading
    in_flight = page.locator("[data-testid='stMetric']", has_text="In flight").first.inner_text()
    assert in_flight.split()[-1] != "0", in_flight

    # A dangerous action asks for confirmation and a reason before it changes anything.
    page.get_by_role("button", name="Pause", exact=True).click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_role("textbox").fill("e2e: hold the rollout")
    assert list_campaigns(ports)[0].state.value == "RUNNING"
    dialog.get_by_role("button", name="Yes, pause").click()
    page.get_by_text("is now PAUSED", exact=False).wait_for(timeout=30_000)
    settle(page)
    shot(page, "10-campaign-paused")
    assert list_campaigns(ports)[0].state.value == "PAUSED"
    assert not [u for u in outside if not u.startswith(("data:", "blob:"))], outside
