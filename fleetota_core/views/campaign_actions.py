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
    "APPROVAL_ACTIONS",
    "CONTINUOUS_ACTIONS",
    "CampaignPreview",
    "campaign_history",
    "create_campaign",
    "get_campaign",
    "preview_campaign",
    "release_versions",
]

# action -> (label, use case, dangerous, allowed campaign states)
ACTIONS = {
    "approve": ("Approve", actions.approve_campaign, True, {"AWAITING_APPROVAL"}),
    "reject": ("Reject", actions.reject_campaign, True, {"AWAITING_APPROVAL"}),
    "pause": ("Pause", actions.pause_campaign, True, {"RUNNING"}),
    "resume": ("Resume", actions.resume_campaign, False, {"PAUSED"}),
    "abort": (
        "Abort",
        actions.abort_campaign,
        True,
        {"AWAITING_APPROVAL", "SCHEDULED", "RUNNING", "PAUSED", "DRAFT"},
    ),
    "retry": ("Retry failed", actions.retry_failed, False, {"RUNNING", "PAUSED", "COMPLETED"}),
    "rollback": ("Roll back", actions.rollback_campaign, True, {"RUNNING", "PAUSED", "COMPLETED", "ABORTED"}),
    "finish": (
        "Finish enrolment",
        actions.finish_campaign,
        True,
        {"AWAITING_APPROVAL", "SCHEDULED", "RUNNING", "PAUSED"},
    ),
}

# Shown only on a campaign that waits for a second operator.
APPROVAL_ACTIONS = frozenset({"approve", "reject"})
# Shown only on a continuous campaign that still takes vehicles.
CONTINUOUS_ACTIONS = frozenset({"finish"})


def release_versions(ports: CampaignPorts) -> list[str]:
    """Published release versions, newest first (what a campaign can roll out)."""
    return [r.version for r in list_releases(ports)]
