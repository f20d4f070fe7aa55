"""The tick's download decisions for a page of deployments: eligibility and the cellular budget.

A download over cellular under a budget first reserves the whole artifact with one conditional
write on the campaign item (``Campaigns.reserve_cellular``), so concurrent ticks never overspend; a
vehicle that finds the budget spent waits for Wi-Fi, deferred with the reason ``cellular_budget``.
A claim that then fails gives its reservation back.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fleetota_core.domain.delivery import DownloadPlan, budget_reason, plan_download
from fleetota_core.domain.eligibility import Deferred

if TYPE_CHECKING:
    from datetime import datetime

    from fleetota_core.domain.campaign import Campaign
    from fleetota_core.domain.deployment import Deployment
    from fleetota_core.services.campaigns.ports import CampaignPorts


def plan_downloads(
    ports: CampaignPorts, campaign: Campaign, deployments: list[Deployment], now: datetime
) -> dict[str, DownloadPlan]:
    """Each deployment's download plan by VIN, its cellular budget already reserved."""
    vehicles = ports.vehicles.get_many([d.vin for d in deployments])
    spec, size = campaign.spec, campaign.release.manifest.size_bytes
    plans = {
        d.vin: plan_download(vehicles.get(d.vin), spec.eligibility, spec.delivery, size, now)
        for d in deployments
    }
    budget = spec.delivery.budget_bytes
    spent = False  # one refusal is enough: every download here reserves the same size
    for vin, plan in plans.items():
        if not plan.reserve or budget is None:
            continue
        if spent or not ports.campaigns.reserve_cellular(campaign.campaign_id, plan.reserve, budget):
            spent = True
            reserved = max(campaign.counters.cellular_reserved, budget - size + 1)
            plans[vin] = DownloadPlan(Deferred(budget_reason(min(reserved, budget), budget)))
    return plans


def give_back(ports: CampaignPorts, campaign: Campaign, plan: DownloadPlan) -> None:
    """Return a plan's reservation: its claim did not happen (capacity, or another tick won)."""
    budget = campaign.spec.delivery.budget_bytes
    if plan.reserve and budget is not None:
        ports.campaigns.reserve_cellular(campaign.campaign_id, -plan.reserve, budget)
