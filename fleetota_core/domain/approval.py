"""Four-eyes approval: which campaigns wait for a second operator before any vehicle hears of them.

Modelled on hawkBit's rollout approval. A campaign needs approval when its spec is marked
``critical`` or when it targets more vehicles than the deployment's ``approval_min_vehicles``
setting; it then waits in AWAITING_APPROVAL until an operator other than its creator approves it.
The update manager enforces the same rule on every tick, so a client that skips it cannot start
such a campaign.
"""

from __future__ import annotations

from dataclasses import dataclass

from fleetota_core.errors import ValidationError


@dataclass(frozen=True)
class ApprovalPolicy:
    """When a campaign needs a second operator; ``min_vehicles=None`` means only critical ones."""

    min_vehicles: int | None = None

    def reason(self, critical: bool, vehicles: int) -> str | None:
        """Why a campaign of ``vehicles`` vehicles needs approval, or None when it does not."""
        if critical:
            return "marked critical"
        if self.min_vehicles is not None and vehicles > self.min_vehicles:
            return f"{vehicles} vehicles is more than the approval limit of {self.min_vehicles}"
        return None


def same_operator(a: str, b: str) -> bool:
    """Operator names compared as people would: case and surrounding spaces do not make a new person."""
    return a.strip().casefold() == b.strip().casefold()


def check_approver(requested_by: str, approver: str, reason: str) -> None:
    """Refuse an approval by the campaign's own creator, or one without a reason for the audit."""
    if same_operator(requested_by, approver):
        raise ValidationError(
            f"four-eyes rule: {approver} created this campaign, so a different operator must approve it"
        )
    if not reason.strip():
        raise ValidationError("an approval needs a reason; it goes to the audit trail with both operators")
