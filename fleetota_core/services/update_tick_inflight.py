"""The tick's look at in-flight deployments whose hint (``active`` lane) has come due.

A due hint means one of: a claim whose notice was never sent (the tick died: re-send it), a notice
lease that ran out while the vehicle works (look again at its deadline), a deadline passed (time it
out, retry or final), or a deployment that has finished or moved on (drop the hint). The deployment
item decides which; the hint only says when to look. New hints are written before old ones go.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from fleetota_core.adapters.deployment_schedule import ACTIVE, WAIT
from fleetota_core.adapters.deployment_store import Outcome, Transition
from fleetota_core.adapters.dynamo_items import sortable_ts
from fleetota_core.domain.deployment import (
    IN_FLIGHT,
    WAITING,
    DeploymentState,
    check_transition,
    decide_retry,
)
from fleetota_core.services.notifications import send_job

if TYPE_CHECKING:
    from fleetota_core.services.campaigns_backend import Campaign, OtaBackend
    from fleetota_core.services.update_tick import TickResult

S = DeploymentState
# A claimed deployment whose notice was never sent (the tick died) is re-sent after this lease.
NOTICE_LEASE = timedelta(seconds=120)
MAX_EVALUATED_PER_TICK = 5000  # per campaign and lane: bounds one tick when much is due at once
PAGE = 200


class Rehints:
    """Hints to write and hints to drop after a page, in that order (a crash keeps the old ones)."""

    def __init__(self) -> None:
        self.put: dict[str, list[tuple[str, str]]] = {ACTIVE: [], WAIT: []}
        self.drop: list[tuple[str, str]] = []

    def move(self, item: dict[str, Any], old: tuple[str, str]) -> None:
        """Re-file a hint under the deployment's own lane and time, or drop it when it is finished."""
        state = S(item["state"])
        if state in IN_FLIGHT or state in WAITING:
            lane = ACTIVE if state in IN_FLIGHT else WAIT
            self.put[lane].append((item.get("next_action_at") or old[0], item["vin"]))
        self.drop.append(old)

    def flush(self, backend: OtaBackend, campaign_id: str, lane: str) -> None:
        schedule = backend.deployments.schedule
        for target, hints in self.put.items():
            schedule.hint_many(campaign_id, target, hints)
        kept = set(self.put[lane])  # never delete a hint just (re)written under the same key
        schedule.drop_many(campaign_id, lane, [h for h in self.drop if h not in kept])
        self.put = {ACTIVE: [], WAIT: []}
        self.drop = []


def look_after_in_flight(backend: OtaBackend, campaign: Campaign, now: datetime, result: TickResult) -> None:
    now_key = sortable_ts(now)
    after: tuple[str, str] | None = None
    looked = 0
    while looked < MAX_EVALUATED_PER_TICK:
        hints = backend.deployments.schedule.due(campaign.campaign_id, ACTIVE, now_key, PAGE, after)
        if not hints:
            return
        after, looked = hints[-1], looked + len(hints)
        items = backend.deployments.get_many(campaign.campaign_id, [vin for _, vin in hints])
        rehints = Rehints()
        handled: set[str] = set()
        for hint in hints:
            item = items.get(hint[1])
            if item is None:
                rehints.drop.append(hint)
            elif hint[1] in handled:
                rehints.drop.append(hint)  # a second due hint of one deployment: handled once
            elif S(item["state"]) not in IN_FLIGHT:
                rehints.move(item, hint)
            elif (item.get("next_action_at") or now_key) > now_key:
                rehints.move(item, hint)  # a lease ran out but the vehicle has its notice: its deadline
            else:
                handled.add(hint[1])
                _due_in_flight(backend, campaign, item, now, result, rehints)
                rehints.drop.append(hint)
        rehints.flush(backend, campaign.campaign_id, ACTIVE)
        if len(hints) < PAGE:
            return


def _due_in_flight(
    backend: OtaBackend,
    campaign: Campaign,
    item: dict[str, Any],
    now: datetime,
    result: TickResult,
    rehints: Rehints,
) -> None:
    state, version = S(item["state"]), int(item["version"])
    if state is S.NOTIFIED and not item.get("notice_sent", False):
        # Claimed by a tick that died before the notification went out: send it now, after taking a
        # fresh lease (conditional), so that two ticks looking at once do not both send it.
        lease = sortable_ts(now + NOTICE_LEASE)
        if not backend.deployments.touch(
            campaign.campaign_id, item["vin"], state.value, version, {"next_action_at": lease}
        ):
            result.lost_races += 1
            return
        rehints.put[ACTIVE].append((lease, item["vin"]))
        if send_job(backend, campaign, item, version + 1, now):
            result.resent += 1
            deadline = now + timedelta(seconds=campaign.spec.in_progress_timeout_s)
            rehints.put[ACTIVE].append((sortable_ts(deadline), item["vin"]))
        return
    deadline = _deadline(campaign, item)
    if deadline is not None and now < deadline:
        # A report overtook the notice bookkeeping; the real timeout runs from notification.
        at = sortable_ts(deadline)
        if backend.deployments.touch(
            campaign.campaign_id, item["vin"], state.value, version, {"next_action_at": at}
        ):
            rehints.put[ACTIVE].append((at, item["vin"]))
        return
    attempt = int(item.get("attempt", 1))
    check_transition(state, S.TIMED_OUT)
    decision = decide_retry(campaign.spec.retry, S.TIMED_OUT, "TIMED_OUT", attempt, now)
    final = S.RETRY_SCHEDULED if decision.retry else S.TIMED_OUT
    change = Transition(
        campaign_id=campaign.campaign_id,
        vin=item["vin"],
        wave=int(item["wave"]),
        old_state=state,
        old_version=version,
        new_state=final,
        next_action_at=sortable_ts(decision.at if decision.at else now),
        sets={
            "error_code": "TIMED_OUT",
            "detail": f"no result {campaign.spec.in_progress_timeout_s}s after notification",
        },
    )
    if backend.deployments.transition(change) is Outcome.APPLIED:
        result.timed_out += 1
        result.retries_scheduled += decision.retry
    else:
        result.lost_races += 1


def _deadline(campaign: Campaign, item: dict[str, Any]) -> datetime | None:
    notified_at = item.get("notified_at")
    if not notified_at:
        return None
    start = datetime.strptime(notified_at, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
    return start + timedelta(seconds=campaign.spec.in_progress_timeout_s)
