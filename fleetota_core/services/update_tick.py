"""The update manager tick: advance every running campaign by what is due now, and nothing else.

Cost grows with the deployments that change: the tick queries only due items of the ``by_status``
index and reads progress from the counters on the campaign item. Every write is conditional, so two
ticks at once never notify a vehicle twice, and a tick that dies midway leaves work the next finishes.
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from fleetota_core.adapters.audit import SYSTEM_OPERATOR
from fleetota_core.adapters.deployment_store import Outcome, Transition, bucket
from fleetota_core.adapters.dynamo_items import sortable_ts
from fleetota_core.domain.campaign import ACTIVE_STATES, ALERT_EVENTS, CampaignState, advance
from fleetota_core.domain.deployment import DeploymentState, check_transition, decide_retry
from fleetota_core.domain.eligibility import evaluate
from fleetota_core.services.campaigns_backend import Campaign, OtaBackend, ota_backend, parse_vehicle
from fleetota_core.services.fleet_health import publish_fleet_health
from fleetota_core.services.notifications import send_job
from fleetota_core.services.update_tick_metrics import publish_ota_metrics

if TYPE_CHECKING:
    from fleetota_core.adapters.clients import ClientFactory
    from fleetota_core.adapters.resources import Resources
    from fleetota_core.domain.vehicle import Vehicle

S = DeploymentState
C = CampaignState
logger = logging.getLogger(__name__)
# A claimed deployment whose notice was never sent (the tick died) is re-sent after this lease.
NOTICE_LEASE = timedelta(seconds=120)
MAX_EVALUATED_PER_TICK = 5000  # per campaign: bounds one tick when most vehicles are deferred
PAGE = 200
NOTIFY_WORKERS = 8
_POOL: ThreadPoolExecutor | None = None
_POOL_LOCK = threading.Lock()


@dataclass
class TickResult:
    """What one tick did; counters are bumped from the notify workers under ``lock``."""

    campaigns: int = 0
    notified: int = 0
    deferred: int = 0
    timed_out: int = 0
    retries_scheduled: int = 0
    resent: int = 0
    lost_races: int = 0
    state_changes: list[str] = field(default_factory=list)
    alerts: int = 0
    duration_s: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def bump(self, name: str, amount: int = 1) -> None:
        with self.lock:
            setattr(self, name, getattr(self, name) + amount)

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "lock"}


def run_tick(
    clients: ClientFactory, resources: Resources, now: datetime | None = None, *, fleet_health: bool = True
) -> TickResult:
    """Advance every scheduled, running or paused campaign once; publish the OTAUpdates metrics."""
    started = time.perf_counter()
    now = now or datetime.now(UTC)
    backend = ota_backend(clients, resources)
    result = TickResult()
    touched: list[Campaign] = []
    for item in backend.campaigns.list_all():
        campaign = Campaign.from_item(item)
        if campaign.state not in ACTIVE_STATES:
            continue
        result.campaigns += 1
        touched.append(tick_campaign(backend, campaign, now, result))
    # Metrics carry the wall clock: CloudWatch rejects old timestamps, and alarms read recent ones.
    publish_ota_metrics(backend, touched, datetime.now(UTC))
    if fleet_health:
        # The telemetry pipeline owns fleet health; this schedule is the one that runs it.
        publish_fleet_health(clients, resources, now=now)
    result.duration_s = time.perf_counter() - started
    return result


def tick_campaign(backend: OtaBackend, campaign: Campaign, now: datetime, result: TickResult) -> Campaign:
    if campaign.state is C.SCHEDULED:
        campaign = _advance(backend, campaign, now, result)
    if campaign.state in (C.RUNNING, C.PAUSED) and campaign.counters.in_flight:
        # In-flight deployments finish (or time out) even while paused, as in hawkBit.
        _expire_in_flight(backend, campaign, now, result)
    if campaign.state is C.RUNNING:
        _notify_due(backend, campaign, now, result)
    return _advance(backend, backend.campaign(campaign.campaign_id), now, result)


def _advance(backend: OtaBackend, campaign: Campaign, now: datetime, result: TickResult) -> Campaign:
    step = advance(campaign.progress(), campaign.spec, now)
    if step.state is campaign.state and step.current_wave == campaign.current_wave:
        return campaign
    fields: dict[str, Any] = {"state": step.state.value, "current_wave": step.current_wave}
    fields["updated_at"] = now.isoformat()
    if step.reason:
        fields["state_reason"] = step.reason
    if step.current_wave != campaign.current_wave:
        fields["acknowledged_failures"] = 0
    if not backend.campaigns.update(campaign.campaign_id, campaign.version, fields):
        result.lost_races += 1  # another tick advanced it; its events are its own to report
        return backend.campaign(campaign.campaign_id)
    for event in step.events:
        result.state_changes.append(f"{campaign.campaign_id}: {event.kind} {event.detail}")
        backend.audit.record(campaign.campaign_id, event.kind.value, SYSTEM_OPERATOR, event.detail, now=now)
        if event.kind in ALERT_EVENTS:
            result.alerts += 1
            backend.notifier.alert(
                f"FleetOTA campaign {campaign.campaign_id} {event.kind.value}",
                {
                    "campaign_id": campaign.campaign_id,
                    "name": campaign.spec.name,
                    "event": event.kind.value,
                    "detail": event.detail,
                    "at": now.isoformat(),
                },
            )
    return backend.campaign(campaign.campaign_id)


def _expire_in_flight(backend: OtaBackend, campaign: Campaign, now: datetime, result: TickResult) -> None:
    key = bucket(campaign.campaign_id, S.NOTIFIED, 0)
    for item in backend.deployments.due(key, sortable_ts(now), limit=MAX_EVALUATED_PER_TICK):
        state = S(item["state"])
        if state is S.NOTIFIED and not item.get("notice_sent", False):
            # Claimed by a tick that died before the notification went out: send it now.
            if send_job(backend, campaign, item, int(item["version"]), now):
                result.resent += 1
            continue
        deadline = _deadline(campaign, item)
        if deadline is not None and now < deadline:
            # A report overtook the notice bookkeeping; the real timeout runs from notification.
            backend.deployments.touch(
                campaign.campaign_id,
                item["vin"],
                state.value,
                int(item["version"]),
                {"next_action_at": sortable_ts(deadline)},
            )
            continue
        attempt = int(item.get("attempt", 1))
        check_transition(state, S.TIMED_OUT)
        decision = decide_retry(campaign.spec.retry, S.TIMED_OUT, "TIMED_OUT", attempt, now)
        final = S.RETRY_SCHEDULED if decision.retry else S.TIMED_OUT
        change = Transition(
            campaign_id=campaign.campaign_id,
            vin=item["vin"],
            wave=int(item["wave"]),
            old_state=state,
            old_version=int(item["version"]),
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


def _notify_due(backend: OtaBackend, campaign: Campaign, now: datetime, result: TickResult) -> None:
    capacity = campaign.spec.max_in_flight - campaign.counters.in_flight
    evaluated = 0
    now_key = sortable_ts(now)
    for wave in range(campaign.current_wave + 1):
        if not campaign.counters.waiting_in(wave):
            continue  # the counters say nothing waits there: skip the query
        key = bucket(campaign.campaign_id, S.PENDING, wave)
        while capacity > 0 and evaluated < MAX_EVALUATED_PER_TICK:
            limit = min(PAGE, max(capacity, 25))
            items = backend.deployments.due(key, now_key, limit=limit)
            if not items:
                break
            evaluated += len(items)
            vehicles = backend.vehicles.get_many([i["vin"] for i in items])

            def consider(item: dict[str, Any], vehicles: dict[str, Any] = vehicles) -> str:
                vehicle = parse_vehicle(vehicles.get(item["vin"]))
                return _consider(backend, campaign, item, vehicle, now, result)

            # Signing, storing and pushing each job is I/O: overlap it. The in-flight cap holds anyway:
            # each claim first reserves a slot with a conditional write on the campaign item.
            verdicts = list(_pool().map(consider, items))
            capacity -= verdicts.count("notified")
            if "capacity" in verdicts:
                return
            if len(items) < limit:
                break  # a short page: nothing else in this wave is due


def _pool() -> ThreadPoolExecutor:
    global _POOL  # one pool per process, reused by every tick (and by a warm Lambda)
    with _POOL_LOCK:
        if _POOL is None:
            _POOL = ThreadPoolExecutor(max_workers=NOTIFY_WORKERS, thread_name_prefix="notify")
        return _POOL


def _consider(
    backend: OtaBackend,
    campaign: Campaign,
    item: dict[str, Any],
    vehicle: Vehicle | None,
    now: datetime,
    result: TickResult,
) -> str:
    """Notify one due deployment if its vehicle qualifies now, else defer it with the reason.

    Returns "notified", "deferred", "lost" (another tick got there first) or "capacity".
    """
    state = S(item["state"])
    version = int(item["version"])
    verdict = evaluate(vehicle, campaign.spec.eligibility, now)
    if not verdict.eligible:
        recheck = sortable_ts(now + timedelta(seconds=campaign.spec.defer_recheck_s))
        sets = {"reason": verdict.reason, "deferred_at": sortable_ts(now)}
        if state is S.DEFERRED:
            touched = {**sets, "next_action_at": recheck}
            applied = backend.deployments.touch(
                campaign.campaign_id, item["vin"], state.value, version, touched
            )
        else:
            check_transition(state, S.DEFERRED)
            change = Transition(
                campaign.campaign_id,
                item["vin"],
                int(item["wave"]),
                state,
                version,
                S.DEFERRED,
                recheck,
                sets,
            )
            applied = backend.deployments.transition(change) is Outcome.APPLIED
        result.bump("deferred" if applied else "lost_races")
        return "deferred" if applied else "lost"
    # The path goes through ELIGIBLE; one write records where it ends (NOTIFIED).
    check_transition(check_transition(state, S.ELIGIBLE), S.NOTIFIED)
    attempt = int(item.get("attempt", 0)) + 1
    change = Transition(
        campaign.campaign_id,
        item["vin"],
        int(item["wave"]),
        state,
        version,
        S.NOTIFIED,
        next_action_at=sortable_ts(now + NOTICE_LEASE),
        sets={"attempt": attempt, "notice_sent": False, "notified_at": sortable_ts(now), "progress_pct": 0},
        removes=("reason", "error_code", "detail"),
        max_in_flight=campaign.spec.max_in_flight,
    )
    outcome = backend.deployments.transition(change)
    if outcome is Outcome.AT_CAPACITY:
        return "capacity"
    if outcome is Outcome.LOST_RACE:
        result.bump("lost_races")
        return "lost"
    claimed = {**item, "attempt": attempt, "state": S.NOTIFIED.value}
    if send_job(backend, campaign, claimed, version + 1, now):
        result.bump("notified")
    return "notified"
