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
    from fleetota_core.domain.vehicle import Vehicle
    from fleetota_core.services.campaigns.ports import CampaignPorts, Hint
    from fleetota_core.services.campaigns.tick import TickResult
    from fleetota_core.services.campaigns.tick_inflight import Rehints

S = DeploymentState
PERMIT_RESEND = timedelta(minutes=10)
NO_SLOT = "waiting for an install slot (max_in_flight)"


def look_after_staged(
    ports: CampaignPorts,
    campaign: Campaign,
    due: list[tuple[Deployment, Hint]],
    now: datetime,
    result: TickResult,
    rehints: Rehints,
) -> None:
    """A page of staged deployments whose hints came due: wait for consent, wait for the window, or
    permit. One vehicles read and one batch of notices per page."""
    vehicles = (
        ports.vehicles.get_many([d.vin for d, _ in due]) if campaign.state is CampaignState.RUNNING else {}
    )
    notices = []
    in_flight = campaign.counters.in_flight
    for deployment, hint in due:
        rehints.drop.append(hint)
        permitted = _look_after(
            ports, campaign, deployment, vehicles.get(deployment.vin), now, result, rehints, in_flight
        )
        if permitted:
            in_flight += 1
            notices.append(install_notice(ports, campaign, deployment, now))
    if notices:
        result.bump("permits", len(ports.notifier.notify_vehicles(notices)))


def _look_after(
    ports: CampaignPorts,
    campaign: Campaign,
    deployment: Deployment,
    vehicle: Vehicle | None,
    now: datetime,
    result: TickResult,
    rehints: Rehints,
    in_flight: int,
) -> bool:
    """One staged deployment; True when it is to get an install permit now."""
    if (deployment.next_action_at or now) > now:
        rehints.put[Lane.ACTIVE].append((deployment.next_action_at or now, deployment.vin))
        return False
    expiry = job_expiry(campaign, deployment)
    if expiry is not None and now >= expiry:
        time_out(ports, campaign, deployment, now, result)
        return False
    recheck = now + timedelta(seconds=campaign.spec.defer_recheck_s)
    delivery = campaign.spec.delivery
    if deployment.state is S.DOWNLOADED and delivery.install is InstallPolicy.CONSENT:
        deadline = (deployment.staged_at or now) + timedelta(seconds=delivery.consent_deadline_s)
        if now < deadline:
            _move(ports, deployment, S.AWAITING_CONSENT, min(deadline, expiry or deadline), {}, result)
            return False
    if campaign.state is not CampaignState.RUNNING:
        _wait(ports, deployment, recheck, f"campaign {campaign.state.value.lower()}", result)
        return False
    verdict = evaluate_install(vehicle, campaign.spec.eligibility, now)
    if not verdict.eligible:
        _wait(ports, deployment, recheck, verdict.reason, result)
        return False
    if in_flight >= campaign.spec.max_in_flight:
        _wait(ports, deployment, now + timedelta(minutes=1), NO_SLOT, result)
        return False
    sets: dict[str, object] = {"install_at": now, "detail": f"install permitted at {now:%Y-%m-%d %H:%M}Z"}
    return _wait(ports, deployment, now + PERMIT_RESEND, None, result, sets)


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


def time_out(
    ports: CampaignPorts,
    campaign: Campaign,
    deployment: Deployment,
    now: datetime,
    result: TickResult,
    detail: str = "the staged image was not installed before its job expired",
) -> None:
    """TIMED_OUT, or RETRY_SCHEDULED when the campaign's retry policy allows another attempt."""
    decision = decide_retry(campaign.spec.retry, S.TIMED_OUT, "TIMED_OUT", deployment.attempt, now)
    change = Transition.of(
        deployment,
        S.RETRY_SCHEDULED if decision.retry else S.TIMED_OUT,
        next_action_at=decision.at or now,
        sets={"error_code": "TIMED_OUT", "detail": detail},
    )
    if transition(ports, change) is Outcome.APPLIED:
        result.bump("timed_out")
        result.bump("retries_scheduled", int(decision.retry))
    else:
        result.bump("lost_races")
