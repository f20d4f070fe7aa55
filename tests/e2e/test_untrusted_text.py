"""Strings from operators, vehicles and alerts are shown as text in a real browser, never as markup.

Seeds, through the product's own use cases, vehicles whose telemetry strings, a release whose notes,
a campaign whose name, reason and operator, and an alert whose subject carry Markdown, HTML, links,
images, colour and icon directives and LaTeX; then visits every page and checks that nothing of it
became an element (no image fetched, no ``javascript:`` link) and that the name reads literally.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

from cryptography.hazmat.primitives.asymmetric import ec

from fleetota_core.adapters.clients import client_factory
from fleetota_core.adapters.dynamo_items import to_item
from fleetota_core.adapters.resources import resolve_resources
from fleetota_core.adapters.vehicle_registry import VehicleRegistry
from fleetota_core.composition import campaign_ports
from fleetota_core.domain.campaign import CampaignSpec, WaveSpec
from fleetota_core.domain.eligibility import EligibilityRules
from fleetota_core.domain.report_signature import public_key_pem
from fleetota_core.domain.vehicle_identity import RegisteredVehicle
from fleetota_core.domain.vin import with_check_digit
from fleetota_core.services.campaigns.actions import pause_campaign
from fleetota_core.services.campaigns.create import create_campaign, get_campaign
from fleetota_core.services.campaigns.releases import publish_release
from fleetota_core.services.campaigns.tick import run_tick
from fleetota_core.settings import Settings
from fleetota_core.views.text import WORD_JOINER
from tests.e2e.test_dashboard_browser import assert_no_error_banner, settle, shot, wait_for

if TYPE_CHECKING:
    from tests.e2e.conftest import Dashboard

TRAP = "127.0.0.1:9/"  # nothing listens on the discard port: a request there is markup that ran
NOTES = f"<img src=http://{TRAP}n.png onerror=alert(1)><b>bold</b>"
NAME = f"![x](http://{TRAP}x.png) [y](javascript:alert(1))"
REASON = f"![r](http://{TRAP}r.png) :red[hold] :material/warning: $x^2$ <img src=http://{TRAP}r2.png>"
OPERATOR = f"[ops](javascript:alert(2)) ![o](http://{TRAP}o.png)"
# Plotly draws <a href> in chart labels (the model is the overview chart's legend and the map's hover).
# Both fit the registry's bounds (model 64 characters, hardware revision 16): identity comes from there.
MODEL = f"![m](http://{TRAP}m)<a href='http://{TRAP}p'>p</a>"
HW_REV = ":red[HW4] *x*"
METRO = "[metro](javascript:alert(3))"
ALERT = f"FleetOTA campaign ![a](http://{TRAP}a.png) [go](javascript:alert(4)) AUTO_PAUSED"
NORMAL = "Spring 2.1.0 rollout"
VERSION = "3.0.0"


def seed_vehicles(settings: Settings, count: int = 6) -> None:
    """Registered vehicles and their state as the processor writes it, with hostile strings in them."""
    clients = client_factory(settings)
    resources = resolve_resources(settings, clients)
    now = datetime.now(UTC).replace(microsecond=0).isoformat()
    vins = [with_check_digit(f"5YJ3E1EA0PF{n:06d}") for n in range(count)]
    key = public_key_pem(ec.generate_private_key(ec.SECP256R1()))
    VehicleRegistry.of_stack(clients.dynamodb, resources).put_many(
        [
            RegisteredVehicle(
                vin=vin,
                make="Tesla",
                model=MODEL,
                model_year=2023,
                hw_rev=HW_REV,
                region="us-west",
                public_key_pem=key,
                provisioned_at=now,
            )
            for vin in vins
        ]
    )
    for vin in vins:
        item = {
            "vin": vin,
            "make": "Tesla",
            "model": MODEL,
            "model_year": 2023,
            "hw_rev": HW_REV,
            "firmware_version": "1.0.0",
            "region": "us-west",
            "metro": METRO,
            "timezone": "America/Los_Angeles",
            "last_ts": now,
            "lat": 37.77,
            "lon": -122.42,
            "soc_pct": 80.0,
            "charging": False,
            "drive_state": "parked",
            "network": "LTE",
            "signal_dbm": -80,
            "online": True,
        }
        clients.dynamodb.put_item(TableName=resources.vehicles_table, Item=to_item(item))


def spec(name: str) -> CampaignSpec:
    return CampaignSpec(
        name=name,
        release_version=VERSION,
        waves=(WaveSpec(percent=50), WaveSpec(percent=50)),
        eligibility=EligibilityRules(min_soc_pct=0),
        description=REASON,
    )


def markup_in_dom(page) -> list[str]:
    """Elements that untrusted text must never become (Streamlit's own pages show no image in Markdown)."""
    found = []
    selectors = (
        "a[href^='javascript:' i]",
        f"a[href*='{TRAP}']",
        f"a[*|href*='{TRAP}']",  # Plotly's SVG links carry xlink:href
        f"img[src*='{TRAP}']",
        f"[src*='{TRAP}']",
    )
    for selector in (*selectors, ".katex", "[data-testid='stMarkdown'] img"):
        if page.locator(selector).count():
            found.append(f"{selector}: {page.locator(selector).first.evaluate('e => e.outerHTML')[:200]}")
    return found


def shown_text(locator) -> str:
    """What a reader sees: the text, without the invisible word joiners that keep URLs from linking."""
    return locator.inner_text().replace(WORD_JOINER, "")


def test_operator_vehicle_and_alert_strings_render_as_text_on_every_page(dashboard: Dashboard, browser):
    settings = Settings(local_port=int(dashboard.env["FLEETOTA_LOCAL_PORT"]))
    clients = client_factory(settings)
    ports = campaign_ports(clients, resolve_resources(settings, clients))
    seed_vehicles(settings)
    publish_release(b"\x7fFW" * 4000, VERSION, [MODEL], [HW_REV], None, NOTES, OPERATOR, ports)

    page = browser.new_page(viewport={"width": 1500, "height": 1800})
    trapped: list[str] = []
    page.on("request", lambda r: trapped.append(r.url) if TRAP in r.url else None)
    page.on("dialog", lambda d: (trapped.append(f"dialog: {d.message}"), d.dismiss()))
    problems: dict[str, list[str]] = {}

    # An ordinary name first: what the Campaigns page looks like for everyday campaigns.
    create_campaign(spec(NORMAL), "e2e-operator", ports, "routine rollout")
    page.goto(f"{dashboard.url}/campaigns")
    settle(page)
    page.get_by_text("Deployment funnel").first.wait_for(timeout=20_000)
    settle(page)
    assert page.locator("h3", has_text=NORMAL).first.is_visible()
    shot(page, "untrusted-campaigns-normal")

    # Then the hostile one: created, started by a tick, paused with a reason, and an alert about it.
    hostile = create_campaign(spec(NAME), OPERATOR, ports, REASON)
    run_tick(ports)
    pause_campaign(hostile.campaign_id, OPERATOR, REASON, ports)
    assert get_campaign(hostile.campaign_id, ports).spec.name == NAME
    ports.notifier.alert(
        ALERT, {"campaign_id": hostile.campaign_id, "event": "AUTO_PAUSED", "detail": REASON}
    )

    def campaigns_page_shows_it() -> bool:
        page.goto(f"{dashboard.url}/campaigns")
        settle(page)
        return page.get_by_text(hostile.campaign_id).count() > 0

    wait_for(campaigns_page_shows_it, 30, "the Campaigns page to list the new campaign", every_s=3)
    page.get_by_text("Deployment funnel").first.wait_for(timeout=20_000)
    settle(page)
    shot(page, "untrusted-campaigns")
    problems["campaigns"] = markup_in_dom(page)
    # The literal name reads as typed in the visible heading, and the pause reason under it.
    main = shown_text(page.locator("[data-testid='stMain']"))
    if not [h for h in page.locator("h3").all() if h.is_visible() and NAME in shown_text(h)]:
        problems["campaigns"].append(f"no visible heading reads {NAME!r}")
    if f"pause by {OPERATOR}: {REASON}" not in main:
        problems["campaigns"].append(f"no text reads {REASON!r}")
    assert_no_error_banner(page)

    for path, name in (("", "overview"), ("firmware", "firmware"), ("vehicles", "vehicles"),
                       ("fleet_map", "fleet-map"), ("monitoring", "monitoring")):  # fmt: skip
        page.goto(f"{dashboard.url}/{path}")
        settle(page)
        if path == "":
            # The paused campaign is listed under "Needs attention" (cached for up to 15 s).
            wait_for(lambda: page.get_by_text("is paused").count(), 30, "the paused campaign", every_s=2)
            settle(page)
        if path == "vehicles":
            page.get_by_text("OTA history").first.wait_for(timeout=20_000)
            settle(page)
        shot(page, f"untrusted-{name}")
        problems[name or "overview"] = markup_in_dom(page)
        if path == "":
            legend = " ".join(t.text_content() or "" for t in page.locator("svg .legendtext").all())
            if "<a href=" not in legend:
                problems["overview"].append(f"the chart legend does not read the model literally: {legend!r}")
        assert_no_error_banner(page)

    # The sidebar's alerts feed lists the seeded alert by its subject, literally.
    if ALERT not in shown_text(page.locator("[data-testid='stSidebar']")):
        problems["alerts feed"] = [f"no alert reads {ALERT!r}"]
    shot(page, "untrusted-sidebar")

    found = [f"{where}: {item}" for where, items in problems.items() for item in items]
    assert not found, "\n".join(found)
    assert not trapped, trapped
