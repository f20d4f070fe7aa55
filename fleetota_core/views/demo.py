"""The demo the dashboard offers: a prefilled campaign spec for the demo release, and the demo fleet.

The spec is an ordinary :class:`CampaignSpec` (three waves, thresholds, short timeouts), so the
page previews it and creates it through the same use cases as the create form.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from fleetota_core.domain.campaign import AbortCriteria, CampaignSpec, TargetFilter, WaveSpec
from fleetota_core.domain.delivery import DeliveryPolicy, InstallPolicy
from fleetota_core.domain.deployment import RetryPolicy
from fleetota_core.domain.eligibility import EligibilityRules, MaintenanceWindow
from fleetota_core.domain.geography import METROS
from fleetota_core.local.demo import (
    DEMO_RELEASE_VERSION,
    DEMO_SPEED,
    demo_fleet_options,
    ensure_demo_release,
    wait_for_fleet_file,
)
from fleetota_core.services.campaigns.releases import list_releases

if TYPE_CHECKING:
    from fleetota_core.domain.firmware import FirmwareRelease
    from fleetota_core.services.campaigns.ports import CampaignPorts

__all__ = [
    "DEMO_RELEASE_VERSION",
    "DEMO_SPEED",
    "DEMO_WAVES_PCT",
    "demo_campaign_spec",
    "demo_delivery",
    "demo_fleet_options",
    "demo_maintenance_window",
    "demo_release",
    "ensure_demo_release",
    "time_compression",
    "wait_for_fleet_file",
]

DEMO_WAVES_PCT = (10.0, 30.0, 60.0)
DEMO_SUCCESS_PCT = 80.0  # a wave opens the next at 80 % succeeded: a few deferred cars do not stall it
DEMO_ERROR_PCT = 10.0
DEMO_TIMEOUT_S = 600  # a demo install takes seconds of wall time; 10 minutes means something is wrong
DEMO_DEFER_RECHECK_S = 30  # driving or charging cars are looked at again on the next tick
# Download now, install later: the demo's maintenance window opens a few minutes after the campaign is
# made for the westernmost vehicles, and is long enough that every other metro is already inside it.
DEMO_WINDOW_OPENS_IN = timedelta(minutes=3)
DEMO_WINDOW_LENGTH = timedelta(hours=12)


def demo_release(ports: CampaignPorts) -> FirmwareRelease | None:
    """The demo release when published, else the newest release, else None."""
    releases = list_releases(ports)
    demo = [r for r in releases if r.version == DEMO_RELEASE_VERSION]
    candidates = demo or releases
    return candidates[0] if candidates else None


def demo_maintenance_window(now: datetime) -> MaintenanceWindow:
    """A daily window in local time that opens about three wall minutes after ``now`` in the demo's
    westernmost time zone (Los Angeles) and lasts 12 hours, so the metros east of it (up to nine hours
    ahead) are already inside: vehicles there install once parked, the Californian ones wait for it.

    The window is judged on the backend's clock, the wall clock, not the fleet's time-compressed day.
    """
    west = min(
        (now.astimezone(ZoneInfo(m.timezone)) for m in METROS), key=lambda t: t.utcoffset() or timedelta(0)
    )
    opens = (west + DEMO_WINDOW_OPENS_IN + timedelta(minutes=1)).replace(second=0, microsecond=0)
    closes = opens + DEMO_WINDOW_LENGTH
    return MaintenanceWindow(start=opens.time().replace(tzinfo=None), end=closes.time().replace(tzinfo=None))


def demo_campaign_spec(release: FirmwareRelease, now: datetime | None = None) -> CampaignSpec:
    """A campaign an operator would start a demo with: 10/30/60 % waves for the release's models,
    downloading at once (Wi-Fi or cellular, deltas where the release has them) and installing only
    when parked inside a maintenance window (the ``window`` install policy)."""
    now = now or datetime.now(UTC)
    waves = tuple(
        WaveSpec(percent=p, success_threshold_pct=DEMO_SUCCESS_PCT, error_threshold_pct=DEMO_ERROR_PCT)
        for p in DEMO_WAVES_PCT
    )
    return CampaignSpec(
        name=f"Demo rollout {release.version} ({now:%d %b %H:%M} UTC)",
        release_version=release.version,
        description="Demo campaign launched from the dashboard",
        target=TargetFilter(models=release.manifest.models),
        waves=waves,
        abort=AbortCriteria(failure_pct=20, min_executed=5),
        max_in_flight=50,
        in_progress_timeout_s=DEMO_TIMEOUT_S,
        retry=RetryPolicy(max_attempts=2, backoff_base_s=30, backoff_max_s=300),
        eligibility=EligibilityRules(
            min_soc_pct=30, require_parked=True, maintenance_windows=(demo_maintenance_window(now),)
        ),
        delivery=DeliveryPolicy(install=InstallPolicy.WINDOW),
        defer_recheck_s=DEMO_DEFER_RECHECK_S,
        job_ttl_s=3600,
    )


def demo_delivery(spec: CampaignSpec) -> str:
    """How the demo campaign delivers, in a sentence: download at once, install in its window."""
    windows = ", ".join(w.describe() for w in spec.eligibility.maintenance_windows) or "any time"
    return (
        "Vehicles download at once (Wi-Fi or cellular, a delta where the release has one for their "
        f"version) and install only when parked inside the maintenance window {windows} local time; "
        "it opens in a few minutes in California and is already open in the other metros."
    )


def time_compression(options: dict | None) -> float | None:
    """How many times faster than real time a running simulator's vehicles live, or None at 1x."""
    speed = float((options or {}).get("speed") or 1.0)
    return speed if speed > 1.0 else None
