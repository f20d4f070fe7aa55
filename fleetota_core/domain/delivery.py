"""How a campaign delivers: when a staged image may install, and over which networks it downloads.

Install policy (hawkBit's download-only mode, Mender's state pauses, Azure Device Update's consent):
``immediate`` downloads and installs in one go when every eligibility rule holds; ``window``
downloads as soon as the vehicle may download (reachable, allowed network, signal) and installs
only when it may install (charged, parked, inside a maintenance window); ``consent`` asks the
driver on the vehicle's screen and, past the consent deadline, falls back to the ``window`` rule.

Network policy: ``download_networks`` ``any`` or ``wifi`` (cellular then only after
``cellular_after`` or for artifacts of at most ``cellular_max_mb``), and a cellular budget in GB
that the tick reserves from, one whole artifact per cellular download, before it starts one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime  # noqa: TC003 - pydantic needs it at runtime
from enum import StrEnum
from typing import TYPE_CHECKING

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from fleetota_core.domain.bounds import DAY_S
from fleetota_core.domain.eligibility import Deferred, Eligible, evaluate, evaluate_download
from fleetota_core.domain.telemetry import CELLULAR_NETWORKS

if TYPE_CHECKING:
    from fleetota_core.domain.eligibility import EligibilityRules, Verdict
    from fleetota_core.domain.vehicle import Vehicle

GB = 1_000_000_000  # cellular plans bill decimal gigabytes
MAX_CONSENT_DEADLINE_S = 14 * DAY_S
MAX_CELLULAR_BUDGET_GB = 1_000_000.0
MAX_COST_PER_GB = 1_000.0
MAX_CELLULAR_MAX_MB = 1_000_000.0
BUDGET_REASON = "cellular_budget"


class InstallPolicy(StrEnum):
    IMMEDIATE = "immediate"
    WINDOW = "window"
    CONSENT = "consent"


class DownloadNetworks(StrEnum):
    ANY = "any"
    WIFI = "wifi"


class DeliveryPolicy(BaseModel):
    """The install and network policy of one campaign (every number bounded, docs/campaigns.md)."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    install: InstallPolicy = InstallPolicy.IMMEDIATE
    # consent: how long the driver has to accept after the image is staged; then the window rule.
    consent_deadline_s: int = Field(default=DAY_S, ge=60, le=MAX_CONSENT_DEADLINE_S)
    download_networks: DownloadNetworks = DownloadNetworks.ANY
    cellular_after: AwareDatetime | None = None  # wifi: cellular allowed from this moment on
    cellular_max_mb: float | None = Field(default=None, gt=0, le=MAX_CELLULAR_MAX_MB)  # wifi: or this small
    cellular_budget_gb: float | None = Field(default=None, ge=0, le=MAX_CELLULAR_BUDGET_GB)
    cellular_cost_per_gb: float = Field(default=2.0, ge=0, le=MAX_COST_PER_GB)

    @property
    def two_phase(self) -> bool:
        return self.install is not InstallPolicy.IMMEDIATE

    @property
    def budget_bytes(self) -> int | None:
        return None if self.cellular_budget_gb is None else int(self.cellular_budget_gb * GB)

    def cellular_permitted(self, size_bytes: int, now: datetime) -> bool:
        """Whether the policy lets a download of ``size_bytes`` use cellular at ``now`` (budget aside)."""
        if self.download_networks is DownloadNetworks.ANY:
            return True
        if self.cellular_after is not None and now >= self.cellular_after:
            return True
        return self.cellular_max_mb is not None and size_bytes <= self.cellular_max_mb * 1_000_000


@dataclass(frozen=True)
class DownloadPlan:
    """The tick's verdict for starting one download, and what the job may use.

    ``cellular`` is signed into the job document: False means the vehicle downloads over Wi-Fi
    only, pausing on cellular. ``reserve`` is the cellular budget to reserve first (bytes, 0: none).
    """

    verdict: Verdict
    cellular: bool = False
    reserve: int = 0


def plan_download(
    vehicle: Vehicle | None,
    rules: EligibilityRules,
    policy: DeliveryPolicy,
    size_bytes: int,
    now: datetime,
) -> DownloadPlan:
    """Whether a download may start now (per the install policy's rules) and over which networks.

    A vehicle on cellular gets a cellular job only if the policy permits it, reserving the whole
    artifact from the budget when there is one; a vehicle on Wi-Fi gets a Wi-Fi-only job when the
    campaign has a budget (nothing reserved, nothing spent) and an unrestricted one otherwise.
    """
    verdict = evaluate_download(vehicle, rules, now) if policy.two_phase else evaluate(vehicle, rules, now)
    if not verdict.eligible or vehicle is None:
        return DownloadPlan(verdict)
    permitted = policy.cellular_permitted(size_bytes, now)
    budget = policy.budget_bytes
    if vehicle.network not in CELLULAR_NETWORKS:
        return DownloadPlan(verdict, cellular=permitted and budget is None)
    if not permitted:
        return DownloadPlan(Deferred(f"network {vehicle.network.value}: this campaign downloads over Wi-Fi"))
    if budget is None:
        return DownloadPlan(verdict, cellular=True)
    if size_bytes > budget:
        return DownloadPlan(Deferred(budget_reason(budget, budget)))
    return DownloadPlan(Eligible(), cellular=True, reserve=size_bytes)


def budget_reason(reserved: int, budget: int) -> str:
    """The deferral of a vehicle on cellular once the budget would be exceeded."""
    return f"{BUDGET_REASON} ({reserved / GB:.2f} of {budget / GB:.2f} GB reserved); waiting for Wi-Fi"
