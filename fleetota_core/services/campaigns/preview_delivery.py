"""The preview's delivery forecast: when the download and install phases should finish, and the
projected cellular data (GB and cost) under the campaign's network policy and budget.

Assumptions (shown with the preview): downloads at ``ASSUMED_DOWNLOAD_MBPS``, ``max_in_flight`` at a
time; a wave opens once the previous one has installed. A two-phase campaign installs each wave at
the next opening of a maintenance window in the latest of the fleet's time zones after its download
(``consent``: after the consent deadline, the bound; drivers who accept finish earlier). A vehicle
downloads over cellular when its latest reading is on cellular and the policy permits it then.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from fleetota_core.domain.delivery import GB, InstallPolicy
from fleetota_core.domain.eligibility import next_opening
from fleetota_core.domain.telemetry import CELLULAR_NETWORKS

if TYPE_CHECKING:
    from fleetota_core.domain.campaign import CampaignSpec
    from fleetota_core.domain.vehicle import Vehicle


@dataclass
class DeliveryForecast:
    install_policy: str
    phases: list[dict[str, Any]] = field(default_factory=list)  # phase, expected_done (ISO), after_s
    cellular_vehicles_now: int = 0
    cellular_demand_bytes: int = 0  # what cellular downloads would take without a budget
    projected_cellular_bytes: int = 0  # capped at the budget
    projected_wifi_bytes: int = 0
    projected_cellular_cost: float = 0.0

    @property
    def projected_cellular_gb(self) -> float:
        return self.projected_cellular_bytes / GB


def _zones(vehicles: list[Vehicle]) -> list[ZoneInfo]:
    zones: dict[str, ZoneInfo] = {}
    for v in vehicles:
        if v.timezone not in zones:
            try:
                zones[v.timezone] = ZoneInfo(v.timezone)
            except (ZoneInfoNotFoundError, ValueError):
                zones[v.timezone] = ZoneInfo("UTC")
    return list(zones.values()) or [ZoneInfo("UTC")]


def _install_opens(spec: CampaignSpec, zones: list[ZoneInfo], after: datetime) -> datetime:
    """When every time zone's next maintenance window has opened after ``after``."""
    windows = spec.eligibility.maintenance_windows
    return max(next_opening(windows, after.astimezone(z)) for z in zones).astimezone(after.tzinfo)


def forecast(
    spec: CampaignSpec,
    vehicles: list[Vehicle],
    sizes: list[int],
    size_bytes: int,
    now: datetime,
    per_download_s: float,
    per_install_s: float,
) -> DeliveryForecast:
    """The two phases' expected ends and the cellular projection (see the module docstring)."""
    delivery = spec.delivery
    zones = _zones(vehicles)
    t = download_done = now
    for n in (n for n in sizes if n):
        batches = math.ceil(n / spec.max_in_flight)
        if delivery.install is InstallPolicy.IMMEDIATE:
            download_done = t + timedelta(seconds=batches * per_download_s + (batches - 1) * per_install_s)
            t += timedelta(seconds=batches * (per_download_s + per_install_s))
            continue
        download_done = t + timedelta(seconds=batches * per_download_s)
        ready = download_done
        if delivery.install is InstallPolicy.CONSENT:
            ready += timedelta(seconds=delivery.consent_deadline_s)
        t = _install_opens(spec, zones, ready) + timedelta(seconds=batches * per_install_s)
    phases = [
        {
            "phase": "download",
            "expected_done": download_done.isoformat(),
            "after_s": (download_done - now).total_seconds(),
        },
        {"phase": "install", "expected_done": t.isoformat(), "after_s": (t - now).total_seconds()},
    ]
    on_cellular = sum(1 for v in vehicles if v.network in CELLULAR_NETWORKS)
    permitted = delivery.cellular_permitted(size_bytes, download_done)
    demand = on_cellular * size_bytes if permitted else 0
    budget = delivery.budget_bytes
    cellular = demand if budget is None else min(demand, budget - budget % size_bytes if size_bytes else 0)
    total = len(vehicles) * size_bytes
    return DeliveryForecast(
        install_policy=delivery.install.value,
        phases=phases,
        cellular_vehicles_now=on_cellular,
        cellular_demand_bytes=demand,
        projected_cellular_bytes=cellular,
        projected_wifi_bytes=total - cellular,
        projected_cellular_cost=round(cellular / GB * delivery.cellular_cost_per_gb, 2),
    )
