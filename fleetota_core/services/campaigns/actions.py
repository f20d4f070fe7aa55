"""Operator actions on a campaign: pause, resume, abort, retry-failed, rollback. Each is audited."""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Any

from fleetota_core.domain.approval import check_approver
from fleetota_core.domain.campaign import CampaignSpec, CampaignState, TargetFilter, WaveSpec, can_transition
from fleetota_core.domain.deployment import DeploymentState, Outcome, Transition, check_transition, recount
from fleetota_core.errors import ConflictError, ResourceNotFoundError, ValidationError
from fleetota_core.services.campaigns.create import create_campaign
from fleetota_core.services.campaigns.transitions import transition

if TYPE_CHECKING:
    from datetime import datetime

    from fleetota_core.domain.campaign import Campaign
    from fleetota_core.domain.deployment import Deployment
    from fleetota_core.services.campaigns.ports import CampaignPorts

C = CampaignState
S = DeploymentState


def _set_state(
    ports: CampaignPorts,
    campaign: Campaign,
    target: CampaignState,
    operator: str,
    reason: str,
    action: str,
    extra: dict[str, object] | None = None,
    detail: dict[str, Any] | None = None,
) -> Campaign:
    if not can_transition(campaign.state, target):
        raise ValidationError(
            f"cannot {action.lower().replace('_', '-')} campaign {campaign.campaign_id}: "
            f"it is {campaign.state}"
        )
    now = ports.clock.now()
    changes: dict[str, object] = {
        "state": target,
        "state_reason": f"{action.lower()} by {operator}: {reason}".strip(": "),
        "updated_at": now,
        **(extra or {}),
    }
    if not ports.campaigns.update(campaign.campaign_id, campaign.version, changes):
        raise ConflictError(f"campaign {campaign.campaign_id} changed meanwhile; look again and retry")
    ports.audit.record(campaign.campaign_id, action, operator, reason, detail, now=now)
    return ports.campaign(campaign.campaign_id)


def approve_campaign(campaign_id: str, operator: str, reason: str, ports: CampaignPorts) -> Campaign:
    """Four-eyes: a second operator lets a campaign that waits for approval start (SCHEDULED)."""
    campaign = _awaiting_decision(campaign_id, "approve", operator, reason, ports)
    detail = {"requested_by": campaign.created_by, "approved_by": operator}
    extra: dict[str, object] = {"approved_by": operator}
    return _set_state(ports, campaign, C.SCHEDULED, operator, reason, "APPROVE", extra, detail)


def reject_campaign(campaign_id: str, operator: str, reason: str, ports: CampaignPorts) -> Campaign:
    """Four-eyes: a second operator turns a waiting campaign down; it is cancelled, no vehicle notified."""
    campaign = _awaiting_decision(campaign_id, "reject", operator, reason, ports)
    detail = {"requested_by": campaign.created_by, "rejected_by": operator}
    campaign = _set_state(ports, campaign, C.CANCELLED, operator, reason, "REJECT", detail=detail)
    _cancel_waiting(ports, campaign, operator, reason)
    return ports.campaign(campaign_id)


def _awaiting_decision(
    campaign_id: str, verb: str, operator: str, reason: str, ports: CampaignPorts
) -> Campaign:
    """The campaign, if it waits for approval and ``operator`` may decide on it (not its creator)."""
    campaign = ports.campaign(campaign_id)
    if campaign.state is not C.AWAITING_APPROVAL:
        raise ValidationError(
            f"cannot {verb} campaign {campaign_id}: it is {campaign.state}, not awaiting approval"
        )
    check_approver(campaign.created_by, operator, reason)
    return campaign


def pause_campaign(campaign_id: str, operator: str, reason: str, ports: CampaignPorts) -> Campaign:
    """Stop new notifications; deployments already in flight finish."""
    return _set_state(ports, ports.campaign(campaign_id), C.PAUSED, operator, reason, "PAUSE")


def resume_campaign(campaign_id: str, operator: str, reason: str, ports: CampaignPorts) -> Campaign:
    """Run again; failures so far in the current wave are acknowledged and no longer pause it."""
    campaign = ports.campaign(campaign_id)
    wave = campaign.current_wave
    acknowledged = campaign.counters.wave_failed[wave] if wave < len(campaign.counters.wave_failed) else 0
    extra: dict[str, object] = {"acknowledged_failures": acknowledged}
    return _set_state(ports, campaign, C.RUNNING, operator, reason, "RESUME", extra)


def abort_campaign(campaign_id: str, operator: str, reason: str, ports: CampaignPorts) -> Campaign:
    """Stop for good: waiting deployments are cancelled; in-flight ones may still report."""
    campaign = ports.campaign(campaign_id)
    target = C.CANCELLED if campaign.state in (C.DRAFT, C.AWAITING_APPROVAL, C.SCHEDULED) else C.ABORTED
    campaign = _set_state(ports, campaign, target, operator, reason, "ABORT")
    if target is C.ABORTED:  # a running rollout stopped for good is news for every operator
        ports.notifier.alert(
            f"FleetOTA campaign {campaign_id} ABORTED",
            {
                "campaign_id": campaign_id,
                "name": campaign.spec.name,
                "event": "ABORTED",
                "detail": campaign.state_reason,
                "operator": operator,
            },
        )
    _cancel_waiting(ports, campaign, operator, reason)
    return ports.campaign(campaign_id)


def finish_campaign(campaign_id: str, operator: str, reason: str, ports: CampaignPorts) -> Campaign:
    """End a continuous campaign's enrolment: no vehicle joins any more, and it completes like any
    campaign once its deployments have finished (the next tick sees that)."""
    campaign = ports.campaign(campaign_id)
    if not campaign.spec.continuous:
        raise ValidationError(
            f"cannot finish campaign {campaign_id}: it is not continuous "
            "(it completes when its last wave drains)"
        )
    if campaign.enrolment_closed:
        raise ValidationError(f"cannot finish campaign {campaign_id}: it is already finished")
    if campaign.state not in (C.SCHEDULED, C.RUNNING, C.PAUSED, C.AWAITING_APPROVAL):
        raise ValidationError(f"cannot finish campaign {campaign_id}: it is {campaign.state}")
    now = ports.clock.now()
    changes: dict[str, object] = {"enrolment_closed": True, "updated_at": now}
    if not ports.campaigns.update(campaign_id, campaign.version, changes):
        raise ConflictError(f"campaign {campaign_id} changed meanwhile; look again and retry")
    detail = {"joined_later": campaign.counters.joined, "vehicles": campaign.total}
    ports.audit.record(campaign_id, "FINISH", operator, reason, detail, now=now)
    return ports.campaign(campaign_id)


def _cancel_waiting(ports: CampaignPorts, campaign: Campaign, operator: str, reason: str) -> None:
    """Cancel the stopped campaign's PENDING deployments; audited with their number."""
    cancelled = 0
    why: dict[str, object] = {"reason": f"campaign {campaign.state.lower()}"}
    for wave in range(len(campaign.wave_sizes)):
        for deployment in list(ports.deployments.in_state(campaign.campaign_id, S.PENDING, wave)):
            cancelled += _move(ports, deployment, S.CANCELLED, why)
    ports.audit.record(campaign.campaign_id, "CANCEL_WAITING", operator, reason, {"cancelled": cancelled})


def retry_failed(campaign_id: str, operator: str, reason: str, ports: CampaignPorts) -> Campaign:
    """Put FAILED and TIMED_OUT deployments back to PENDING (fresh attempts); reopen the campaign."""
    campaign = ports.campaign(campaign_id)
    if campaign.state not in (C.RUNNING, C.PAUSED, C.COMPLETED):
        raise ValidationError(f"cannot retry-failed campaign {campaign_id}: it is {campaign.state}")
    retried = 0
    for deployment in list(ports.deployments.in_state(campaign_id, S.FAILED)):
        retried += _move(ports, deployment, S.PENDING, {"attempt": 0}, ("error_code", "detail"))
    if retried == 0:
        raise ValidationError(f"campaign {campaign_id} has no FAILED or TIMED_OUT deployment to retry")
    campaign = ports.campaign(campaign_id)
    detail = {"retried": retried}
    if campaign.state is C.RUNNING:
        ports.audit.record(campaign_id, "RETRY_FAILED", operator, reason, detail)
        return campaign
    return _set_state(ports, campaign, C.RUNNING, operator, reason, "RETRY_FAILED", detail=detail)


def _move(
    ports: CampaignPorts,
    deployment: Deployment,
    target: DeploymentState,
    sets: dict[str, object],
    clears: tuple[str, ...] = (),
) -> int:
    check_transition(deployment.state, target)
    now = ports.clock.now()
    change = Transition.of(
        deployment, target, next_action_at=now, sets={**sets, "updated_at": now}, clears=clears
    )
    return int(transition(ports, change) is Outcome.APPLIED)


def rollback_campaign(
    campaign_id: str, operator: str, reason: str, ports: CampaignPorts, now: datetime | None = None
) -> Campaign:
    """A new campaign taking the vehicles that installed ``campaign_id``'s release back to their
    previous version (the most common one among them); the job documents allow the downgrade."""
    original = ports.campaign(campaign_id)
    took = list(ports.deployments.in_state(campaign_id, S.SUCCEEDED))
    if not took:
        raise ValidationError(
            f"campaign {campaign_id} has no vehicle that installed {original.release.version}"
        )
    previous, _ = Counter(d.from_version for d in took if d.from_version).most_common(1)[0]
    if ports.releases.get_release(previous) is None:
        raise ResourceNotFoundError(f"previous version {previous} was never published here; cannot roll back")
    spec = CampaignSpec(
        name=f"rollback of {original.spec.name}"[:120],
        release_version=previous,
        target=TargetFilter(vins=tuple(sorted(d.vin for d in took if d.from_version == previous))),
        waves=(WaveSpec(percent=100, success_threshold_pct=0, error_threshold_pct=100),),
        max_in_flight=original.spec.max_in_flight,
        in_progress_timeout_s=original.spec.in_progress_timeout_s,
        retry=original.spec.retry,
        eligibility=original.spec.eligibility,
        defer_recheck_s=original.spec.defer_recheck_s,
        job_ttl_s=original.spec.job_ttl_s,
        kind="rollback",
        rollback_of=campaign_id,
        description=reason,
    )
    rollback = create_campaign(spec, operator, ports, reason, now=now)
    ports.audit.record(campaign_id, "ROLLBACK", operator, reason, {"rollback_campaign": rollback.campaign_id})
    return rollback


def recount_campaign(campaign_id: str, operator: str, reason: str, ports: CampaignPorts) -> Campaign:
    """Recompute the campaign's counters from its deployments (one Query over the campaign).

    Repairs drift left by a writer that died between a deployment write and its counter update.
    """
    campaign = ports.campaign(campaign_id)
    deployments = ports.deployments.for_campaign(campaign_id)
    joined = [d.wave for d in deployments if d.joined_at is not None]
    counters = recount([(d.state, d.wave) for d in deployments], len(campaign.wave_sizes), joined)
    ports.campaigns.set_counters(campaign_id, counters)
    in_flight = ports.campaign(campaign_id).in_flight
    ports.audit.record(campaign_id, "RECOUNT", operator, reason, {"in_flight": in_flight})
    return ports.campaign(campaign_id)
