"""The update manager tick: advance every running campaign by what is due now, and nothing else.

Cost grows with the deployments that change; the tick never queries the deployments table. Progress
comes from the counters on the campaign item, due work from the schedule's hints (in flight: leases
and timeouts; waiting: re-checks and retries), fresh deployments from each open wave's roster past
its cursor (see ``adapters/deployment_schedule``). Every write is conditional, so two ticks at once
never notify a vehicle twice; a tick that dies midway leaves hints and a cursor the next one uses.
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
from fleetota_core.adapters.campaign_store import roster_cursors
from fleetota_core.adapters.deployment_schedule import ACTIVE, WAIT
from fleetota_core.adapters.deployment_store import Outcome, Transition
from fleetota_core.adapters.dynamo_items import sortable_ts
from fleetota_core.domain.campaign import ACTIVE_STATES, ALERT_EVENTS, CampaignState, advance
from fleetota_core.domain.deployment import WAITING, DeploymentState, check_transition
from fleetota_core.domain.eligibility import evaluate
from fleetota_core.services.campaigns.backend import Campaign, OtaBackend, ota_backend, parse_vehicle
from fleetota_core.services.campaigns.notifications import PreparedJob, announce, prepare_job
from fleetota_core.services.campaigns.tick_inflight import (
    MAX_EVALUATED_PER_TICK,
    NOTICE_LEASE,
    PAGE,
    Rehints,
    look_after_in_flight,
)
from fleetota_core.services.campaigns.tick_metrics import publish_ota_metrics
from fleetota_core.services.ingest.fleet_health import publish_fleet_health

if TYPE_CHECKING:
    from fleetota_core.adapters.clients import ClientFactory
    from fleetota_core.adapters.resources import Resources
    from fleetota_core.domain.eligibility import Verdict

S = DeploymentState
C = CampaignState
logger = logging.getLogger(__name__)
__all__ = ["NOTICE_LEASE", "TickResult", "run_tick", "tick_campaign"]
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
        touched.append(tick_campaign(backend, campaign, now, result, roster_cursors(item)))
    # Metrics carry the wall clock: CloudWatch rejects old timestamps, and alarms read recent ones.
    publish_ota_metrics(backend, touched, datetime.now(UTC))
    if fleet_health:
        # The telemetry pipeline owns fleet health; this schedule is the one that runs it.
        publish_fleet_health(clients, resources, now=now)
    result.duration_s = time.perf_counter() - started
    return result


def tick_campaign(
    backend: OtaBackend,
    campaign: Campaign,
    now: datetime,
    result: TickResult,
    cursors: dict[int, int] | None = None,
) -> Campaign:
    """Advance one campaign; ``cursors`` are its waves' roster cursors as read (stale is safe)."""
    if campaign.state is C.SCHEDULED:
        campaign = _advance(backend, campaign, now, result)
    if campaign.state in (C.RUNNING, C.PAUSED) and campaign.counters.in_flight:
        # In-flight deployments finish (or time out) even while paused, as in hawkBit.
        look_after_in_flight(backend, campaign, now, result)
    if campaign.state is C.RUNNING:
        _notify_due(backend, campaign, now, result, cursors or {})
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


def _notify_due(
    backend: OtaBackend, campaign: Campaign, now: datetime, result: TickResult, cursors: dict[int, int]
) -> None:
    budget = _Budget(campaign.spec.max_in_flight - campaign.counters.in_flight)
    # The counters say where something waits; waves with nothing waiting cost no request.
    waves = [w for w in range(campaign.current_wave + 1) if campaign.counters.waiting_in(w)]
    if not waves or not budget.open():
        return
    _from_hints(backend, campaign, now, result, budget)
    for wave in waves:
        if not budget.open():
            return
        _from_roster(backend, campaign, wave, cursors.get(wave, 0), now, result, budget)


@dataclass
class _Budget:
    capacity: int  # free in-flight slots
    evaluated: int = 0

    def open(self) -> bool:
        return self.capacity > 0 and self.evaluated < MAX_EVALUATED_PER_TICK

    def page(self) -> int:
        return min(PAGE, max(self.capacity, 25))

    def spend(self, verdicts: dict[str, str]) -> None:
        self.capacity = 0 if "capacity" in verdicts.values() else self.capacity - _count(verdicts, "notified")


def _count(verdicts: dict[str, str], verdict: str) -> int:
    return sum(1 for v in verdicts.values() if v == verdict)


def _from_hints(
    backend: OtaBackend, campaign: Campaign, now: datetime, result: TickResult, budget: _Budget
) -> None:
    """Deferred and retried deployments whose time has come (the ``wait`` lane of the schedule)."""
    now_key = sortable_ts(now)
    after: tuple[str, str] | None = None
    while budget.open():
        page = budget.page()
        hints = backend.deployments.schedule.due(campaign.campaign_id, WAIT, now_key, page, after)
        if not hints:
            return
        after = hints[-1]
        budget.evaluated += len(hints)
        items = backend.deployments.get_many(campaign.campaign_id, [vin for _, vin in hints])
        rehints, candidates, chosen = Rehints(), {}, []
        for hint in hints:
            item = items.get(hint[1])
            if item is None or hint[1] in candidates:
                rehints.drop.append(hint)
            elif S(item["state"]) not in WAITING or (item.get("next_action_at") or now_key) > now_key:
                rehints.move(item, hint)
            elif int(item.get("wave", 0)) <= campaign.current_wave:  # else keep it for its wave
                candidates[hint[1]] = item
                chosen.append(hint)
        verdicts = _consider_page(backend, campaign, list(candidates.values()), now, result)
        rehints.drop.extend(h for h in chosen if verdicts[h[1]] != "capacity")
        rehints.flush(backend, campaign.campaign_id, WAIT)
        budget.spend(verdicts)
        if len(hints) < page:
            return


def _from_roster(
    backend: OtaBackend,
    campaign: Campaign,
    wave: int,
    cursor: int,
    now: datetime,
    result: TickResult,
    budget: _Budget,
) -> None:
    """Deployments never looked at yet: the wave's roster from its cursor on, in rollout order."""
    now_key = sortable_ts(now)
    size = campaign.wave_sizes[wave]
    while cursor < size and budget.open():
        vins = backend.deployments.schedule.roster(
            campaign.campaign_id, wave, cursor, min(budget.page(), size - cursor)
        )
        if not vins:
            logger.warning("campaign %s wave %d has no roster at %d", campaign.campaign_id, wave, cursor)
            return
        budget.evaluated += len(vins)
        items = backend.deployments.get_many(campaign.campaign_id, vins)
        fresh = [items[v] for v in vins if v in items and items[v]["state"] == S.PENDING.value]
        due = [i for i in fresh if (i.get("next_action_at") or now_key) <= now_key]
        verdicts = _consider_page(backend, campaign, due, now, result)
        budget.spend(verdicts)
        # The cursor passes every position that needs no more looking at, up to the first that does.
        passed = 0
        for vin in vins:
            if (
                vin in items
                and items[vin]["state"] == S.PENDING.value
                and verdicts.get(vin, "capacity") == "capacity"
            ):
                break
            passed += 1
        if passed:
            backend.campaigns.advance_cursor(campaign.campaign_id, wave, cursor + passed)
            cursor += passed
        if passed < len(vins):
            return


def _consider_page(
    backend: OtaBackend, campaign: Campaign, items: list[dict[str, Any]], now: datetime, result: TickResult
) -> dict[str, str]:
    """Notify or defer each of ``items``; their verdicts by VIN (see ``_consider``)."""
    if not items:
        return {}
    vehicles = backend.vehicles.get_many([i["vin"] for i in items])
    rules = campaign.spec.eligibility
    verdicts = {i["vin"]: evaluate(parse_vehicle(vehicles.get(i["vin"])), rules, now) for i in items}
    times = (
        sortable_ts(now + NOTICE_LEASE),
        sortable_ts(now + timedelta(seconds=campaign.spec.defer_recheck_s)),
    )
    # The hints go first, in batches: a claim or deferral that then dies midway is found again.
    schedule = backend.deployments.schedule
    schedule.hint_many(
        campaign.campaign_id, ACTIVE, [(times[0], v) for v, e in verdicts.items() if e.eligible]
    )
    schedule.hint_many(
        campaign.campaign_id, WAIT, [(times[1], v) for v, e in verdicts.items() if not e.eligible]
    )

    def consider(item: dict[str, Any]) -> _Considered:
        try:
            return _consider(backend, campaign, item, verdicts[item["vin"]], times, now, result)
        except Exception as exc:  # re-raised below, once the other notices of the page are recorded
            return _Considered("error", error=exc)

    # Claiming, signing and storing each job is I/O: overlap it. The in-flight cap holds anyway:
    # each claim first reserves a slot with a conditional write on the campaign item.
    considered = dict(zip([i["vin"] for i in items], _pool().map(consider, items), strict=True))
    # The page's notices go out ten per request, then are recorded in one batch: each deployment's
    # hint at its deadline (the record that it was sent), then its lease hint dropped. A tick that
    # dies before this leaves the leases, and a later tick re-sends those notices (the vehicle
    # ignores a repeat of the job it has).
    sent = announce(backend, [c.job for c in considered.values() if c.job is not None])
    result.bump("notified", len(sent))
    rehints = Rehints()
    rehints.put[ACTIVE] = sent
    rehints.drop = [(times[0], vin) for _, vin in sent]
    rehints.flush(backend, campaign.campaign_id, ACTIVE)
    for c in considered.values():
        if c.error is not None:
            raise c.error
    return {vin: c.verdict for vin, c in considered.items()}


@dataclass
class _Considered:
    """One deployment's verdict (see ``_consider``) and, when claimed, its job ready to announce."""

    verdict: str
    job: PreparedJob | None = None
    error: Exception | None = None


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
    verdict: Verdict,
    times: tuple[str, str],
    now: datetime,
    result: TickResult,
) -> _Considered:
    """Notify one due deployment if its vehicle qualifies now, else defer it with the reason.

    ``times`` are the notice lease and the re-check time, whose hints the caller wrote. The verdict
    is "notified", "deferred", "lost" (another tick got there first) or "capacity".
    """
    state = S(item["state"])
    version = int(item["version"])
    lease, recheck = times
    if not verdict.eligible:
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
                hinted=True,
            )
            applied = backend.deployments.transition(change) is Outcome.APPLIED
        result.bump("deferred" if applied else "lost_races")
        return _Considered("deferred" if applied else "lost")
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
        next_action_at=lease,
        sets={"attempt": attempt, "notified_at": sortable_ts(now), "progress_pct": 0},
        # ``notice_sent``: an earlier attempt's mark from before sent hints; it must not vouch for this one.
        removes=("reason", "error_code", "detail", "notice_sent"),
        max_in_flight=campaign.spec.max_in_flight,
        hinted=True,
    )
    outcome = backend.deployments.transition(change)
    if outcome is Outcome.AT_CAPACITY:
        return _Considered("capacity")
    if outcome is Outcome.LOST_RACE:
        result.bump("lost_races")
        return _Considered("lost")
    claimed = {**item, **change.sets, "state": S.NOTIFIED.value}
    return _Considered("notified", prepare_job(backend, campaign, claimed, now))
