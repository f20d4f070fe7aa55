"""The local demo: a time-compressed demo fleet and a signed demo release for it.

Both `local up --demo-fleet N` and the dashboard's first page load start the same demo fleet and
publish the same release (once: publishing is skipped when the version exists), so a first-time
user has something to roll out within a minute. The release carries deltas from the versions most
of its vehicles run; those versions' images (the simulator's, ``simulator.firmware_images``) are
published first as the installed base, since a delta is made from, and bound to, a signed image.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from fleetota_core.domain.delta import delta_sources
from fleetota_core.errors import ConflictError
from fleetota_core.local.simulator_process import STATE_DIR, SimulatorOptions, read_fleet_file
from fleetota_core.services.campaigns.releases import publish_release
from fleetota_core.services.delta.publish import publish_with_deltas
from simulator.firmware_images import DEFAULT_IMAGE_BYTES, catalogue_image

if TYPE_CHECKING:
    from pathlib import Path

    from fleetota_core.domain.firmware import FirmwareRelease
    from fleetota_core.services.campaigns.ports import CampaignPorts

logger = logging.getLogger(__name__)

# A simulated hour per wall minute: a commute, a charge or an install is seen within a minute.
DEMO_SPEED = 60.0
DEMO_INTERVAL_S = 60.0  # simulated seconds between readings: one reading per vehicle per wall second
DEMO_SEED = 42  # the same demo fleet (VINs, models, homes) on every start
# A delivery-heavy fleet: depot vehicles drive stop to stop all shift, commuters mostly park.
DEMO_FLEET_SHARE = 0.8
# Simulated days start at 15:30 UTC: shifts under way in the US, the evening commute in Europe.
DEMO_START_UTC = timedelta(hours=15, minutes=30)
DEMO_RELEASE_VERSION = "3.5.0"  # newer than every version the simulator's catalogue ships
DEMO_RELEASE_MODELS = 3  # the most common models of the demo fleet
DEMO_IMAGE_BYTES = DEFAULT_IMAGE_BYTES  # the simulator's image size: its vehicles run these images
DEMO_DELTA_SOURCES = 3  # deltas from the versions most of the demo release's vehicles run
DEMO_OPERATOR = "system:demo"


def demo_start(now: datetime) -> datetime:
    """The simulated start: today's (or the last weekday's) 15:30 UTC, so the fleet wakes up busy."""
    day = datetime(now.year, now.month, now.day, tzinfo=UTC)
    while day.weekday() >= 5:
        day -= timedelta(days=1)
    return day + DEMO_START_UTC


def demo_fleet_options(vehicles: int, now: datetime | None = None) -> SimulatorOptions:
    """The demo fleet's simulator options: time-compressed, readings stamped with the wall clock."""
    start = demo_start(now or datetime.now(UTC))
    return SimulatorOptions(
        vehicles=vehicles,
        interval_s=DEMO_INTERVAL_S,
        speed=DEMO_SPEED,
        seed=DEMO_SEED,
        wall_clock=True,
        start=start.isoformat(),
        fleet_share=DEMO_FLEET_SHARE,
    )


def demo_firmware_image(version: str = DEMO_RELEASE_VERSION, size: int = DEMO_IMAGE_BYTES) -> bytes:
    """The simulated image of ``version``: deterministic, and a few per cent away from its predecessor."""
    return catalogue_image(version, size)


def demo_release_target(vehicles: list[dict[str, Any]]) -> tuple[list[str], list[str]]:
    """The most common models of the fleet and every hardware revision they carry in it."""
    counts = Counter(str(v.get("model", "")) for v in vehicles if v.get("model"))
    models = [model for model, _ in counts.most_common(DEMO_RELEASE_MODELS)]
    hw_revs = sorted({str(v["hw_rev"]) for v in vehicles if v.get("model") in models and v.get("hw_rev")})
    return models, hw_revs


def wait_for_fleet_file(state_dir: Path = STATE_DIR, timeout_s: float = 20.0) -> list[dict[str, Any]] | None:
    """The demo fleet's definition, waiting for a simulator that has just started to write it."""
    deadline = time.monotonic() + timeout_s
    while True:
        vehicles = read_fleet_file(state_dir)
        if vehicles or time.monotonic() >= deadline:
            return vehicles
        time.sleep(0.25)


def ensure_demo_release(
    ports: CampaignPorts, vehicles: list[dict[str, Any]] | None
) -> FirmwareRelease | None:
    """Publish the signed demo release for ``vehicles`` unless it exists; the new release, else None."""
    if not vehicles or ports.releases.release_exists(DEMO_RELEASE_VERSION):
        return None
    models, hw_revs = demo_release_target(vehicles)
    if not models:
        return None
    # Vehicles that have not reported yet are still in the fleet the release is for.
    allowed = {str(v.get("model")) for v in vehicles}
    versions = (str(v.get("firmware_version") or "") for v in vehicles if v.get("model") in models)
    sources = [v for v, _ in delta_sources(versions, DEMO_RELEASE_VERSION, DEMO_DELTA_SOURCES)]
    notes = (
        f"Demo release for the {len(vehicles)}-vehicle demo fleet ({', '.join(models)}): a generated "
        f"{DEMO_IMAGE_BYTES // 1024} KiB image with deltas from {', '.join(sources) or 'no version'}, "
        "published automatically on the first local run."
    )
    try:
        for source in sources:
            _ensure_installed_base(ports, source, models, hw_revs, allowed)
        release, _ = publish_with_deltas(
            demo_firmware_image(),
            DEMO_RELEASE_VERSION,
            models,
            hw_revs,
            None,
            notes,
            DEMO_OPERATOR,
            ports,
            filename=f"demo-{DEMO_RELEASE_VERSION}.bin",
            allowed_models=allowed,
            delta_from=sources,
        )
    except ConflictError:  # the CLI and the dashboard raced to publish it
        return None
    return release


def _ensure_installed_base(
    ports: CampaignPorts, version: str, models: list[str], hw_revs: list[str], allowed: set[str]
) -> None:
    """Publish the image the demo fleet's vehicles on ``version`` run, unless it is published."""
    if ports.releases.release_exists(version):
        return
    try:
        publish_release(
            demo_firmware_image(version),
            version,
            models,
            hw_revs,
            None,
            f"The demo fleet's installed {version}, published so that deltas can be made from it.",
            DEMO_OPERATOR,
            ports,
            filename=f"demo-{version}.bin",
            allowed_models=allowed,
        )
    except ConflictError:  # the other entry point published the same image meanwhile
        logger.info("demo installed base %s was published meanwhile", version)
