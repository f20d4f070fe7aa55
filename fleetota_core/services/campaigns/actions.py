"""Operator actions on a campaign: pause, resume, abort, retry-failed, rollback. Each is audited."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from fleetota_core.adapters.deployment_store import Outcome, Transition, bucket
from fleetota_core.adapters.dynamo_items import sortable_ts
from fleetota_core.domain.campaign import CampaignSpec, CampaignState, TargetFilter, WaveSpec, can_transition
from fleetota_core.domain.deployment import (
    FAILED_OUTCOMES,
    IN_FLIGHT,
    WAITING,
    DeploymentState,
    check_transition,
)
from fleetota_core.errors import ConflictError, ResourceNotFoundError, ValidationError
from fleetota_core.services.campaigns.backend import Campaign, OtaBackend, ota_backend
from fleetota_core.services.campaigns.create import create_campaign

if TYPE_CHECKING:
    from fleetota_core.adapters.clients import ClientFactory
    from fleetota_core.adapters.resources import Resources

C = CampaignState
S = DeploymentState


def _set_state(
    backend: OtaBackend,
    campaign: Campaign,
    target: CampaignState,
    operator: str,
    reason: str,
    action: str,
    extra: dict[str, Any] | None = None,
    detail: dict[str, Any] | None = None,
) -> Campaign:
    if not can_transition(campaign.state, target):
        raise ValidationError(
            f"cannot {action.lower().replace('_', '-')} campaign {campaign.campaign_id}: "
            f"it is {campaign.state}"
        )
    now = datetime.now(UTC)
    fields = {"state": target.value, "state_reason": f"{action.lower()} by {operator}: {reason}".strip(": ")}
    fields.update({"updated_at": now.isoformat(), **(extra or {})})
    if not backend.campaigns.update(campaign.campaign_id, campaign.version, fields):
        raise ConflictError(f"campaign {campaign.campaign_id} changed meanwhile; look again and retry")
    backend.audit.record(campaign.campaign_id, action, operator, reason, detail, now=now)
    return backend.campaign(campaign.campaign_id)


def pause_campaign(
    campaign_id: str, operator: str, reason: str, clients: ClientFactory, resources: Resources
) -> Campaign:
    """Stop new notifications; deployments already in flight finish."""
    backend = ota_backend(clients, resources)
    return _set_state(backend, backend.campaign(campaign_id), C.PAUSED, operator, reason, "PAUSE")


def resume_campaign(
    campaign_id: str, operator: str, reason: str, clients: ClientFactory, resources: Resources
) -> Campaign:
    """Run again; failures so far in the current wave are acknowledged and no longer pause it."""
    backend = ota_backend(clients, resources)
    campaign = backend.campaign(campaign_id)
    wave = campaign.current_wave
    acknowledged = campaign.counters.wave_failed[wave] if wave < len(campaign.counters.wave_failed) else 0
    extra = {"acknowledged_failures": acknowledged}
    return _set_state(backend, campaign, C.RUNNING, operator, reason, "RESUME", extra)


def abort_campaign(
    campaign_id: str, operator: str, reason: str, clients: ClientFactory, resources: Resources
) -> Campaign:
    """Stop for good: waiting deployments are cancelled; in-flight ones may still report."""
    backend = ota_backend(clients, resources)
    campaign = backend.campaign(campaign_id)
    target = C.CANCELLED if campaign.state in (C.DRAFT, C.SCHEDULED) else C.ABORTED
    campaign = _set_state(backend, campaign, target, operator, reason, "ABORT")
    if target is C.ABORTED:  # a running rollout stopped for good is news for every operator
        backend.notifier.alert(
            f"FleetOTA campaign {campaign_id} ABORTED",
            {
                "campaign_id": campaign_id,
                "name": campaign.spec.name,
                "event": "ABORTED",
                "detail": campaign.state_reason,
                "operator": operator,
            },
        )
    cancelled = 0
    for wave in range(len(campaign.wave_sizes)):
        for item in list(backend.deployments.in_bucket(bucket(campaign_id, S.PENDING, wave))):
            cancelled += _move(backend, campaign, item, S.CANCELLED, {"reason": f"campaign {target.lower()}"})
    backend.audit.record(campaign_id, "CANCEL_WAITING", operator, reason, {"cancelled": cancelled})
    return backend.campaign(campaign_id)


def retry_failed(
    campaign_id: str, operator: str, reason: str, clients: ClientFactory, resources: Resources
) -> Campaign:
    """Put FAILED and TIMED_OUT deployments back to PENDING (fresh attempts); reopen the campaign."""
    backend = ota_backend(clients, resources)
    campaign = backend.campaign(campaign_id)
    if campaign.state not in (C.RUNNING, C.PAUSED, C.COMPLETED):
        raise ValidationError(f"cannot retry-failed campaign {campaign_id}: it is {campaign.state}")
    retried = 0
    for item in list(backend.deployments.in_bucket(bucket(campaign_id, S.FAILED, 0))):
        retried += _move(backend, campaign, item, S.PENDING, {"attempt": 0}, ("error_code", "detail"))
    if retried == 0:
        raise ValidationError(f"campaign {campaign_id} has no FAILED or TIMED_OUT deployment to retry")
    campaign = backend.campaign(campaign_id)
    detail = {"retried": retried}
    if campaign.state is C.RUNNING:
        backend.audit.record(campaign_id, "RETRY_FAILED", operator, reason, detail)
        return campaign
    return _set_state(backend, campaign, C.RUNNING, operator, reason, "RETRY_FAILED", detail=detail)


def _move(
    backend: OtaBackend,
    campaign: Campaign,
    item: dict[str, Any],
    target: DeploymentState,
    sets: dict[str, Any],
    removes: tuple[str, ...] = (),
) -> int:
    state = S(item["state"])
    check_transition(state, target)
    now = sortable_ts(datetime.now(UTC))
    change = Transition(
        campaign.campaign_id,
        item["vin"],
        int(item["wave"]),
        state,
        int(item["version"]),
        target,
        next_action_at=now,
        sets={**sets, "updated_at": now},
        removes=removes,
    )
    return int(backend.deployments.transition(change) is Outcome.APPLIED)


def rollback_campaign(
    campaign_id: str,
    operator: str,
    reason: str,
    clients: ClientFactory,
    resources: Resources,
    now: datetime | None = None,
) -> Campaign:
    """A new campaign taking the vehicles that installed ``campaign_id``'s release back to their
    previous version (the most common one among them); the job documents allow the downgrade."""
    backend = ota_backend(clients, resources)
    original = backend.campaign(campaign_id)
    took = list(backend.deployments.in_bucket(bucket(campaign_id, S.SUCCEEDED, 0)))
    if not took:
        raise ValidationError(
            f"campaign {campaign_id} has no vehicle that installed {original.release.version}"
        )
    previous, _ = Counter(i.get("from_version") for i in took if i.get("from_version")).most_common(1)[0]
    if backend.firmware.get_release(previous) is None:
        raise ResourceNotFoundError(f"previous version {previous} was never published here; cannot roll back")
    spec = CampaignSpec(
        name=f"rollback of {original.spec.name}"[:120],
        release_version=previous,
        target=TargetFilter(vins=tuple(sorted(i["vin"] for i in took if i.get("from_version") == previous))),
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
    rollback = create_campaign(spec, operator, clients, resources, reason, now=now)
    backend.audit.record(
        campaign_id, "ROLLBACK", operator, reason, {"rollback_campaign": rollback.campaign_id}
    )
    return rollback


def recount_campaign(
    campaign_id: str, operator: str, reason: str, clients: ClientFactory, resources: Resources
) -> Campaign:
    """Recompute the campaign's counters from its deployments (one Query over the campaign).

    Repairs drift left by a writer that died between a deployment write and its counter update.
    """
    backend = ota_backend(clients, resources)
    campaign = backend.campaign(campaign_id)
    counters: dict[str, int] = {f"n_{s.value}": 0 for s in S}
    counters["in_flight"] = 0
    for wave in range(len(campaign.wave_sizes)):
        counters[f"w{wave}_ok"] = counters[f"w{wave}_fail"] = counters[f"w{wave}_wait"] = 0
    for item in backend.deployments.for_campaign(campaign_id):
        state, wave = S(item["state"]), int(item["wave"])
        counters[f"n_{state.value}"] += 1
        counters["in_flight"] += state in IN_FLIGHT
        counters[f"w{wave}_ok"] += state is S.SUCCEEDED
        counters[f"w{wave}_fail"] += state in FAILED_OUTCOMES
        counters[f"w{wave}_wait"] += state in WAITING
    backend.deployments.set_counters(campaign_id, counters)
    backend.audit.record(campaign_id, "RECOUNT", operator, reason, {"in_flight": counters["in_flight"]})
    return backend.campaign(campaign_id)
