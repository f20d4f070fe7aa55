"""Read models for a campaign's delivery: where its deployments are in the two phases, and the bytes
its vehicles downloaded over Wi-Fi and over cellular (with the cellular budget and its cost)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd

from fleetota_core.domain.delivery import GB

if TYPE_CHECKING:
    from fleetota_core.domain.campaign import Campaign

# phase -> (step, the deployment states counted in it), in the order a deployment passes them.
PHASES = (
    ("download", "downloading", ("NOTIFIED", "DOWNLOADING", "VERIFYING")),
    ("install", "awaiting consent", ("AWAITING_CONSENT",)),
    ("install", "awaiting install", ("DOWNLOADED", "AWAITING_INSTALL")),
    ("install", "installing", ("INSTALLING",)),
    ("install", "installed", ("SUCCEEDED",)),
)


def delivery_phases(campaign: Campaign) -> pd.DataFrame:
    """``phase, step, deployments``: how many deployments are at each step of the two phases."""
    c = campaign.counters
    rows = [{"phase": phase, "step": step, "deployments": c.count(*states)} for phase, step, states in PHASES]
    return pd.DataFrame(rows, columns=["phase", "step", "deployments"])


def bytes_by_network(campaign: Campaign) -> pd.DataFrame:
    """``network, bytes, gb``: what the vehicles reported downloading, per network."""
    c = campaign.counters
    rows = [
        {"network": "Wi-Fi", "bytes": c.bytes_wifi, "gb": c.bytes_wifi / GB},
        {"network": "cellular", "bytes": c.bytes_cellular, "gb": c.bytes_cellular / GB},
    ]
    return pd.DataFrame(rows, columns=["network", "bytes", "gb"])


def cellular_spend(campaign: Campaign) -> dict[str, float | None]:
    """Cellular GB used, its cost at the campaign's price, and the budget (None: no budget)."""
    delivery = campaign.spec.delivery
    used = campaign.counters.bytes_cellular / GB
    return {
        "used_gb": used,
        "cost": used * delivery.cellular_cost_per_gb,
        "budget_gb": delivery.cellular_budget_gb,
        "reserved_gb": campaign.counters.cellular_reserved / GB,
    }
