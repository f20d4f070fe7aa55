"""The tick's look at staged deployments (downloaded and verified, not yet installed).

A vehicle reports DOWNLOADED once its image is verified and staged. The tick then decides, in the
``active`` lane: a ``consent`` campaign waits for the driver until the consent deadline
(AWAITING_CONSENT; the vehicle installs on its own if the driver accepts); after that, and in a
``window`` campaign at once, the deployment waits in AWAITING_INSTALL until the vehicle is
install-eligible (charged, parked, inside a maintenance window), and the tick then sends it a signed
install permit. A permit that brings no INSTALLING report is re-sent after ``PERMIT_RESEND``. A staged
image whose job document expires uninstalled times out (and is retried per the retry policy).
Paused campaigns send no permits.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from fleetota_core.domain.campaign import CampaignState
from fleetota_core.domain.delivery import InstallPolicy
from fleetota_core.domain.deployment import DeploymentState, Lane, Outcome, Transition, decide_retry
from fleetota_core.domain.eligibility import evaluate_install
from fleetota_core.services.campaigns.notifications import install_notice, job_expiry
from fleetota_core.services.campaigns.transitions import transition

if TYPE_CHECKING:
    from datetime import datetime

    from fleetota_core.domain.campaign import Campaign
    from fleetota_core.domain.deployment import Deployment
    from fleetota_core.services.campaigns.ports import CampaignPorts, Hint
    from fleetota_core.services.campaigns.tick import TickResult
    from fleetota_core.services.campaigns.tick_inflight import Rehints

S = DeploymentState
PERMIT_RESEND = timedelta(minutes=10)
NO_SLOT = "waiting for an install slot (max_in_flight)"


def look_after_staged(
    ports: CampaignPorts,
    campaign: Campaign,
    deployment: Deployment,
    hint: Hint,
    now: datetime,
    result: TickResult,
    rehints: Rehints,
) -> None:
    """One staged deployment whose hint came due: wait for consent, wait for the window, or permit."""
    rehints.drop.append(hint)
    if (deployment.next_action_at or now) > now:
        rehints.put[Lane.ACTIVE].append((deployment.next_action_at or now, deployment.vin))
        return
    expiry = job_expiry(campaign, deployment)
    if expiry is not None and now >= expiry:
        _time_out(ports, campaign, deployment, now, result)
        return
    recheck = now + timedelta(seconds=campaign.spec.defer_recheck_s)
    delivery = campaign.spec.delivery
    if deployment.state is S.DOWNLOADED and delivery.install is InstallPolicy.CONSENT:
        deadline = (deployment.staged_at or now) + timedelta(seconds=delivery.consent_deadline_s)
        if now < deadline:
            _move(ports, deployment, S.AWAITING_CONSENT, min(deadline, expiry or deadline), {}, result)
            return
    if campaign.state is not CampaignState.RUNNING:
        _wait(ports, deployment, recheck, f"campaign {campaign.state.value.lower()}", result)
        return
    vehicle = ports.vehicles.get_many([deployment.vin]).get(deployment.vin)
    verdict = evaluate_install(vehicle, campaign.spec.eligibility, now)
    if not verdict.eligible:
        _wait(ports, deployment, recheck, verdict.reason, result)
        return
    if campaign.counters.in_flight >= campaign.spec.max_in_flight:
        _wait(ports, deployment, now + timedelta(minutes=1), NO_SLOT, result)
        return
    sets: dict[str, object] = {"install_at": now, "detail": f"install permitted at {now:%Y-%m-%d %H:%M}Z"}
    if _wait(ports, deployment, now + PERMIT_RESEND, None, result, sets):
        published = ports.notifier.notify_vehicles([install_notice(ports, campaign, deployment, now)])
        result.bump("permits", len(published))


def _wait(
    ports: CampaignPorts,
    deployment: Deployment,
    at: datetime,
    reason: str | None,
    result: TickResult,
    sets: dict[str, object] | None = None,
) -> bool:
    """Into (or stay in) AWAITING_INSTALL until ``at``, with ``reason``; True when written."""
    values = {"reason": reason, "next_action_at": at, **(sets or {})}
    if deployment.state is S.AWAITING_INSTALL:
        applied = ports.deployments.touch(
            deployment.campaign_id, deployment.vin, deployment.state, deployment.version, values
        )
        if applied:
            ports.schedule.hint(deployment.campaign_id, Lane.ACTIVE, at, deployment.vin)
        else:
            result.bump("lost_races")
        return applied
    return _move(ports, deployment, S.AWAITING_INSTALL, at, values, result)


def _move(
    ports: CampaignPorts,
    deployment: Deployment,
    target: DeploymentState,
    at: datetime,
    sets: dict[str, object],
    result: TickResult,
) -> bool:
    values = {k: v for k, v in sets.items() if k != "next_action_at" and v is not None}
    clears = tuple(k for k, v in sets.items() if v is None)
    change = Transition.of(deployment, target, next_action_at=at, sets=values, clears=clears)
    if transition(ports, change) is Outcome.APPLIED:
        return True
    result.bump("lost_races")
    return False


def _time_out(
    ports: CampaignPorts, campaign: Campaign, deployment: Deployment, now: datetime, result: TickResult
) -> None:
    decision = decide_retry(campaign.spec.retry, S.TIMED_OUT, "TIMED_OUT", deployment.attempt, now)
    change = Transition.of(
        deployment,
        S.RETRY_SCHEDULED if decision.retry else S.TIMED_OUT,
        next_action_at=decision.at or now,
        sets={
            "error_code": "TIMED_OUT",
            "detail": "the staged image was not installed before its job expired",
        },
    )
    if transition(ports, change) is Outcome.APPLIED:
        result.bump("timed_out")
        result.bump("retries_scheduled", int(decision.retry))
    else:
        result.bump("lost_races")
