"""What a campaign spec would do, before anything is written: vehicles, waves, volume, duration."""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from fleetota_core.domain.campaign import CampaignSpec, wave_sizes
from fleetota_core.domain.delta import project_delivery
from fleetota_core.domain.eligibility import evaluate
from fleetota_core.services.campaigns.create import target_vehicles
from fleetota_core.services.campaigns.preview_delivery import DeliveryForecast, forecast
from fleetota_core.services.campaigns.release_trust import check_artifact, check_release
from fleetota_core.services.campaigns.releases import get_release

if TYPE_CHECKING:
    from datetime import datetime

    from fleetota_core.services.campaigns.ports import CampaignPorts

# Duration model: a typical LTE download rate and install + reboot time, plus one tick of latency.
ASSUMED_DOWNLOAD_MBPS = 20.0
ASSUMED_INSTALL_S = 600.0
TICK_S = 60.0


@dataclass
class CampaignPreview:
    matched: int
    eligible_now: int
    deferred_now: int
    deferred_reasons: dict[str, int] = field(default_factory=dict)
    excluded: dict[str, int] = field(default_factory=dict)
    wave_sizes: list[int] = field(default_factory=list)
    download_bytes: int = 0  # with the release's deltas, for the vehicles whose version has one
    full_image_bytes: int = 0  # every matched vehicle downloading the full image
    delta_vehicles: int = 0  # matched vehicles that are offered a delta
    estimated_duration_s: float = 0.0
    assumptions: str = ""
    # Two phases (download, install) and the cellular projection (see ``preview_delivery``).
    delivery: DeliveryForecast | None = None

    @property
    def bytes_saved(self) -> int:
        return self.full_image_bytes - self.download_bytes

    @property
    def saved_pct(self) -> float:
        return 0.0 if not self.full_image_bytes else 100.0 * self.bytes_saved / self.full_image_bytes

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "bytes_saved": self.bytes_saved}


def download_s(size_bytes: int) -> float:
    return size_bytes * 8 / (ASSUMED_DOWNLOAD_MBPS * 1e6) + TICK_S


def estimate_duration_s(sizes: list[int], size_bytes: int, max_in_flight: int) -> float:
    """Waves run one after another; each runs ``max_in_flight`` deployments at a time."""
    per_vehicle = download_s(size_bytes) + ASSUMED_INSTALL_S
    return sum(math.ceil(n / max_in_flight) * per_vehicle for n in sizes if n)


def preview_campaign(
    spec: CampaignSpec, ports: CampaignPorts, now: datetime | None = None
) -> CampaignPreview:
    """Matched vehicles, how many qualify now (and why the rest do not), wave sizes, volume, duration."""
    now = now or ports.clock.now()
    release = check_artifact(ports, check_release(ports, get_release(spec.release_version, ports)))
    targeting = target_vehicles(ports, spec, release)
    reasons: Counter[str] = Counter()
    eligible = 0
    for vehicle in targeting.matched:
        verdict = evaluate(vehicle, spec.eligibility, now)
        if verdict.eligible:
            eligible += 1
        else:
            # Group "battery 18% < 30%" and "battery 12% < 30%" under one rule name.
            reasons[(verdict.reason or "").split(" ")[0]] += 1
    sizes = wave_sizes(len(targeting.matched), spec.waves)
    delivery = project_delivery(
        release.manifest.size_bytes, release.deltas, (v.firmware_version for v in targeting.matched)
    )
    per_vehicle = delivery.planned_bytes // max(1, delivery.vehicles) or release.manifest.size_bytes
    return CampaignPreview(
        matched=len(targeting.matched),
        eligible_now=eligible,
        deferred_now=len(targeting.matched) - eligible,
        deferred_reasons=dict(reasons.most_common()),
        excluded=targeting.excluded,
        wave_sizes=sizes,
        download_bytes=delivery.planned_bytes,
        full_image_bytes=delivery.full_bytes,
        delta_vehicles=delivery.delta_vehicles,
        estimated_duration_s=estimate_duration_s(sizes, per_vehicle, spec.max_in_flight),
        assumptions=f"{ASSUMED_DOWNLOAD_MBPS:g} Mbit/s downloads, {ASSUMED_INSTALL_S:g} s install, "
        f"{TICK_S:g} s tick; deferred vehicles add time; two-phase installs wait for the next "
        "maintenance window; cellular = vehicles on cellular now, capped at the budget",
        delivery=forecast(
            spec,
            targeting.matched,
            sizes,
            release.manifest.size_bytes,
            now,
            download_s(release.manifest.size_bytes),
            ASSUMED_INSTALL_S,
        ),
    )
