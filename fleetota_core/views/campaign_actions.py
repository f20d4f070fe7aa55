"""What the dashboard asks of the campaign use cases: preview, create, the operator actions and the
lookups behind them. Pages import views only; this is their door to the campaign services."""

from __future__ import annotations

from typing import TYPE_CHECKING

from fleetota_core.services.campaigns import actions
from fleetota_core.services.campaigns.create import campaign_history, create_campaign, get_campaign
from fleetota_core.services.campaigns.preview import CampaignPreview, preview_campaign
from fleetota_core.services.campaigns.releases import list_releases

if TYPE_CHECKING:
    from fleetota_core.services.campaigns.ports import CampaignPorts

__all__ = [
    "ACTIONS",
    "CampaignPreview",
    "campaign_history",
    "create_campaign",
    "get_campaign",
    "preview_campaign",
    "release_versions",
]

# action -> (label, use case, dangerous, allowed campaign states)
ACTIONS = {
    "pause": ("Pause", actions.pause_campaign, True, {"RUNNING"}),
    "resume": ("Resume", actions.resume_campaign, False, {"PAUSED"}),
    "abort": ("Abort", actions.abort_campaign, True, {"SCHEDULED", "RUNNING", "PAUSED", "DRAFT"}),
    "retry": ("Retry failed", actions.retry_failed, False, {"RUNNING", "PAUSED", "COMPLETED"}),
    "rollback": ("Roll back", actions.rollback_campaign, True, {"RUNNING", "PAUSED", "COMPLETED", "ABORTED"}),
}


def release_versions(ports: CampaignPorts) -> list[str]:
    """Published release versions, newest first (what a campaign can roll out)."""
    return [r.version for r in list_releases(ports)]
