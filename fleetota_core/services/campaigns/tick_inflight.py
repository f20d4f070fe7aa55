"""The tick's look at in-flight deployments whose hint (``active`` lane) has come due.

A claim files a notice lease hint; once the notice went out, the tick files the deployment's *sent
hint* at its deadline and drops the lease. So a due hint means one of: a lease whose claim has no
sent hint (the tick died before recording the notice: re-send it), a deadline passed (time it out,
retry or final), an early hint of a deployment whose vehicle already reported (look again at the
deadline), or a deployment that has finished or moved on (drop the hint). The deployment decides
which; the hint only says when to look. New hints are written before old ones go.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from fleetota_core.domain.deployment import (
    IN_FLIGHT,
    STAGED,
    DeploymentState,
    Lane,
    check_transition,
    lane_of,
)
from fleetota_core.services.campaigns.notifications import announce, notice_deadline, prepare_job, sent_hint
from fleetota_core.services.campaigns.tick_install import look_after_staged, time_out

if TYPE_CHECKING:
    from fleetota_core.domain.campaign import Campaign
    from fleetota_core.domain.deployment import Deployment
    from fleetota_core.services.campaigns.ports import CampaignPorts, Hint
    from fleetota_core.services.campaigns.tick import TickResult

S = DeploymentState
# A claimed deployment whose notice was never sent (the tick died) is re-sent after this lease.
NOTICE_LEASE = timedelta(seconds=120)
MAX_EVALUATED_PER_TICK = 5000  # per campaign and lane: bounds one tick when much is due at once
PAGE = 200


class Rehints:
    """Hints to write and hints to drop after a page, in that order (a crash keeps the old ones)."""

    def __init__(self) -> None:
        self.put: dict[Lane, list[Hint]] = {Lane.ACTIVE: [], Lane.WAIT: []}
        self.drop: list[Hint] = []

    def move(self, deployment: Deployment, old: Hint) -> None:
        """Re-file a hint under the deployment's own lane and time, or drop it when it is finished."""
        lane = lane_of(deployment.state)
        if lane is not None:
            self.put[lane].append((deployment.next_action_at or old[0], deployment.vin))
        self.drop.append(old)

    def flush(self, ports: CampaignPorts, campaign_id: str, lane: Lane) -> None:
        for target, hints in self.put.items():
            ports.schedule.hint_many(campaign_id, target, hints)
        kept = set(self.put[lane])  # never delete a hint just (re)written under the same key
        ports.schedule.drop_many(campaign_id, lane, [h for h in self.drop if h not in kept])
        self.put = {Lane.ACTIVE: [], Lane.WAIT: []}
        self.drop = []


def look_after_in_flight(ports: CampaignPorts, campaign: Campaign, now: datetime, result: TickResult) -> None:
    after: Hint | None = None
    looked = 0
    while looked < MAX_EVALUATED_PER_TICK:
        hints = ports.schedule.due(campaign.campaign_id, Lane.ACTIVE, now, PAGE, after)
        if not hints:
            return
        after, looked = hints[-1], looked + len(hints)
        found = ports.deployments.get_many(campaign.campaign_id, [vin for _, vin in hints])
        rehints = Rehints()
        handled: set[str] = set()
        unsent = _unsent_notices(ports, campaign, hints, found, now)
        staged: list[tuple[Deployment, Hint]] = []
        for hint in hints:
            deployment = found.get(hint[1])
            if deployment is None or hint[1] in handled:
                rehints.drop.append(hint)  # gone, or a second due hint of one deployment: handled once
            elif deployment.state in STAGED:
                handled.add(hint[1])
                staged.append((deployment, hint))
            elif deployment.state not in IN_FLIGHT:
                rehints.move(deployment, hint)
            else:
                handled.add(hint[1])
                _due_in_flight(ports, campaign, deployment, hint, hint[1] in unsent, now, result, rehints)
        if staged:
            look_after_staged(ports, campaign, staged, now, result, rehints)
        rehints.flush(ports, campaign.campaign_id, Lane.ACTIVE)
        if len(hints) < PAGE:
            return


def _unsent_notices(
    ports: CampaignPorts,
    campaign: Campaign,
    hints: list[Hint],
    found: dict[str, Deployment],
    now: datetime,
) -> set[str]:
    """VINs whose due hint is a run-out notice lease of a claim whose notice has no sent hint.

    Only a tick that died between claiming and recording its notices leaves those, so this costs
    a request only then.
    """
    expired = {}
    for at, vin in hints:
        deployment = found.get(vin)
        if deployment and deployment.state is S.NOTIFIED and deployment.next_action_at == at <= now:
            expired[vin] = sent_hint(campaign, deployment)
    if not expired:
        return set()
    filed = ports.schedule.existing(campaign.campaign_id, Lane.ACTIVE, list(expired.values()))
    return {vin for vin, hint in expired.items() if hint not in filed}


def _due_in_flight(
    ports: CampaignPorts,
    campaign: Campaign,
    deployment: Deployment,
    hint: Hint,
    unsent: bool,
    now: datetime,
    result: TickResult,
    rehints: Rehints,
) -> None:
    """One in-flight deployment whose hint came due: re-send its notice, time it out, or wait on."""
    rehints.drop.append(hint)
    if unsent:
        _resend(ports, campaign, deployment, now, result, rehints)
        return
    deadline = notice_deadline(campaign, deployment)
    if deadline is not None and now < deadline:
        if deployment.state is not S.NOTIFIED or deployment.notice_sent:
            # The vehicle has its notice (it reported, or was notified before sent hints existed and
            # carries ``notice_sent``): look again at the deadline. A NOTIFIED one keeps its lease
            # hint or its sent hint, which comes due at the deadline anyway.
            rehints.put[Lane.ACTIVE].append(sent_hint(campaign, deployment))
        return
    check_transition(deployment.state, S.TIMED_OUT)
    detail = f"no result {campaign.spec.in_progress_timeout_s}s after notification"
    time_out(ports, campaign, deployment, now, result, detail)


def _resend(
    ports: CampaignPorts,
    campaign: Campaign,
    deployment: Deployment,
    now: datetime,
    result: TickResult,
    rehints: Rehints,
) -> None:
    """A claim whose tick died before recording the notice: send it now, after taking a fresh lease
    (hint first, then a conditional write), so two ticks looking at once do not both send."""
    lease = now + NOTICE_LEASE
    ports.schedule.hint(campaign.campaign_id, Lane.ACTIVE, lease, deployment.vin)
    renewed = {"next_action_at": lease, "notified_at": now}
    if not ports.deployments.touch(
        campaign.campaign_id, deployment.vin, deployment.state, deployment.version, renewed
    ):
        result.bump("lost_races")
        return
    sent = announce(ports, [prepare_job(ports, campaign, deployment.changed(**renewed), now)])
    rehints.put[Lane.ACTIVE].extend(sent)
    rehints.drop.extend((lease, vin) for _, vin in sent)
    result.bump("resent", len(sent))
