"""The tick's look at in-flight deployments whose hint (``active`` lane) has come due.

A claim files a notice lease hint; once the notice went out, the tick files the deployment's *sent
hint* at its deadline and drops the lease. So a due hint means one of: a lease whose claim has no
sent hint (the tick died before recording the notice: re-send it), a deadline passed (time it out,
retry or final), an early hint of a deployment whose vehicle already reported (look again at the
deadline), or a deployment that has finished or moved on (drop the hint). The deployment item
decides which; the hint only says when to look. New hints are written before old ones go.
"""

from __future__ import annotations

from datetime import datetime, timedelta
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
from fleetota_core.services.campaigns.notifications import announce, notice_deadline, prepare_job, sent_hint

if TYPE_CHECKING:
    from fleetota_core.services.campaigns.backend import Campaign, OtaBackend
    from fleetota_core.services.campaigns.tick import TickResult

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
        unsent = _unsent_notices(backend, campaign, hints, items, now_key)
        for hint in hints:
            item = items.get(hint[1])
            if item is None or hint[1] in handled:
                rehints.drop.append(hint)  # gone, or a second due hint of one deployment: handled once
            elif S(item["state"]) not in IN_FLIGHT:
                rehints.move(item, hint)
            else:
                handled.add(hint[1])
                _due_in_flight(backend, campaign, item, hint, hint[1] in unsent, now, result, rehints)
        rehints.flush(backend, campaign.campaign_id, ACTIVE)
        if len(hints) < PAGE:
            return


def _unsent_notices(
    backend: OtaBackend,
    campaign: Campaign,
    hints: list[tuple[str, str]],
    items: dict[str, dict[str, Any]],
    now_key: str,
) -> set[str]:
    """VINs whose due hint is a run-out notice lease of a claim whose notice has no sent hint.

    Only a tick that died between claiming and recording its notices leaves those, so this costs
    a request only then.
    """
    expired = {}
    for at, vin in hints:
        item = items.get(vin)
        if item and item["state"] == S.NOTIFIED.value and item.get("next_action_at") == at <= now_key:
            expired[vin] = sent_hint(campaign, item)
    if not expired:
        return set()
    found = backend.deployments.schedule.existing(campaign.campaign_id, ACTIVE, list(expired.values()))
    return {vin for vin, hint in expired.items() if hint not in found}


def _due_in_flight(
    backend: OtaBackend,
    campaign: Campaign,
    item: dict[str, Any],
    hint: tuple[str, str],
    unsent: bool,
    now: datetime,
    result: TickResult,
    rehints: Rehints,
) -> None:
    """One in-flight deployment whose hint came due: re-send its notice, time it out, or wait on."""
    rehints.drop.append(hint)
    state, version = S(item["state"]), int(item["version"])
    if unsent:
        # Claimed by a tick that died before recording the notice: send it now, after taking a fresh
        # lease (hint first, then a conditional write), so two ticks looking at once do not both send.
        lease = sortable_ts(now + NOTICE_LEASE)
        backend.deployments.schedule.hint(campaign.campaign_id, ACTIVE, lease, item["vin"])
        renewed = {"next_action_at": lease, "notified_at": sortable_ts(now)}
        if not backend.deployments.touch(campaign.campaign_id, item["vin"], state.value, version, renewed):
            result.lost_races += 1
            return
        sent = announce(backend, [prepare_job(backend, campaign, {**item, **renewed}, now)])
        rehints.put[ACTIVE].extend(sent)
        rehints.drop.extend((lease, at_vin[1]) for at_vin in sent)
        result.resent += len(sent)
        return
    deadline = notice_deadline(campaign, item)
    if deadline is not None and now < deadline:
        if state is not S.NOTIFIED or item.get("notice_sent"):
            # The vehicle has its notice (it reported, or was notified before sent hints existed and
            # carries ``notice_sent``): look again at the deadline. A NOTIFIED one keeps its lease
            # hint or its sent hint, which comes due at the deadline anyway.
            rehints.put[ACTIVE].append(sent_hint(campaign, item))
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
