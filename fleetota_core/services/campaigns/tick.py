"""The update manager tick: advance every running campaign by what is due now, and nothing else.

Cost grows with the deployments that change; the tick never queries the deployments table. Progress
comes from the counters on the campaign, due work from the schedule's hints (in flight: leases and
timeouts; waiting: re-checks and retries), fresh deployments from each open wave's roster past its
cursor. Every write is conditional, so two ticks at once never notify a vehicle twice; a tick that
dies midway leaves hints and a cursor the next one uses.
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from fleetota_core.domain.campaign import ACTIVE_STATES, ALERT_EVENTS, SYSTEM_OPERATOR, CampaignState, advance
from fleetota_core.domain.deployment import (
    WAITING,
    DeploymentState,
    Lane,
    Outcome,
    Transition,
    check_transition,
)
from fleetota_core.services.campaigns.download_plans import give_back, plan_downloads
from fleetota_core.services.campaigns.enrolment import enrol_new_vehicles
from fleetota_core.services.campaigns.health_gate import gate_next_wave
from fleetota_core.services.campaigns.notifications import PreparedJob, announce, prepare_job
from fleetota_core.services.campaigns.release_trust import hold_untrusted, release_problem
from fleetota_core.services.campaigns.tick_inflight import (
    MAX_EVALUATED_PER_TICK,
    NOTICE_LEASE,
    PAGE,
    Rehints,
    look_after_in_flight,
)
from fleetota_core.services.campaigns.tick_metrics import publish_ota_metrics
from fleetota_core.services.campaigns.transitions import Decrements, transition

if TYPE_CHECKING:
    from fleetota_core.domain.campaign import Campaign
    from fleetota_core.domain.delivery import DownloadPlan
    from fleetota_core.domain.deployment import Deployment
    from fleetota_core.services.campaigns.ports import CampaignPorts

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
    joined: int = 0  # vehicles that joined continuous campaigns
    permits: int = 0  # install permits sent to staged deployments
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


def run_tick(ports: CampaignPorts, now: datetime | None = None) -> TickResult:
    """Advance every scheduled, running or paused campaign once; publish the OTAUpdates metrics."""
    started = time.perf_counter()
    now = now or ports.clock.now()
    result = TickResult()
    touched: list[Campaign] = []
    for campaign in ports.campaigns.list_all():
        if campaign.state not in ACTIVE_STATES:
            continue
        result.campaigns += 1
        touched.append(tick_campaign(ports, campaign, now, result))
    # Metrics carry the wall clock: CloudWatch rejects old timestamps, and alarms read recent ones.
    publish_ota_metrics(ports, touched, ports.clock.now())
    result.duration_s = time.perf_counter() - started
    return result


def tick_campaign(ports: CampaignPorts, campaign: Campaign, now: datetime, result: TickResult) -> Campaign:
    """Advance one campaign; its roster cursors are as read (stale is safe)."""
    if campaign.state is C.SCHEDULED and campaign.approved_by is None:
        held = ports.approval.reason(campaign.spec.critical, campaign.total)
        if held:
            return _hold_for_approval(ports, campaign, held, now)
    if campaign.state is C.SCHEDULED:
        campaign = _advance(ports, campaign, now, result)
    if campaign.state in (C.RUNNING, C.PAUSED):
        problem = release_problem(ports, campaign.release)
        if problem is not None:  # sign nothing that points at it, not even a re-sent notice
            return hold_untrusted(ports, campaign, problem, now, result)
    if campaign.enrolling and campaign.state in (C.RUNNING, C.PAUSED):
        result.joined += enrol_new_vehicles(ports, campaign, now)
        # Read again: joiners' counters (ours, or another tick's seen meanwhile) open the wave's hints.
        campaign = ports.campaign(campaign.campaign_id)
    if campaign.state in (C.RUNNING, C.PAUSED) and (campaign.counters.in_flight or campaign.counters.staged):
        # In-flight deployments finish (or time out) even while paused, as in hawkBit; staged images
        # get no install permit while paused.
        look_after_in_flight(ports, campaign, now, result)
    if campaign.state is C.RUNNING:
        _notify_due(ports, campaign, now, result)
    return _advance(ports, ports.campaign(campaign.campaign_id), now, result)


def _hold_for_approval(ports: CampaignPorts, campaign: Campaign, why: str, now: datetime) -> Campaign:
    """The server side of four-eyes: a campaign created without it (an old client, a direct write)
    that needs approval waits for a second operator instead of starting."""
    reason = f"held by the update manager: awaiting a second operator: {why}"
    changes: dict[str, object] = {"state": C.AWAITING_APPROVAL, "state_reason": reason, "updated_at": now}
    if ports.campaigns.update(campaign.campaign_id, campaign.version, changes):
        ports.audit.record(campaign.campaign_id, "APPROVAL_REQUIRED", SYSTEM_OPERATOR, why, now=now)
    return ports.campaign(campaign.campaign_id)


def _advance(ports: CampaignPorts, campaign: Campaign, now: datetime, result: TickResult) -> Campaign:
    step = advance(campaign.progress(), campaign.spec, now)
    if step.current_wave > campaign.current_wave and campaign.spec.soak_minutes is not None:
        # The health gate holds the next wave until the soak of this one passes (or pauses it).
        opens, campaign = gate_next_wave(ports, campaign, now, result)
        if not opens:
            return campaign
        step = advance(campaign.progress(), campaign.spec, now)
    if step.state is campaign.state and step.current_wave == campaign.current_wave:
        return campaign
    changes: dict[str, object] = {"state": step.state, "current_wave": step.current_wave, "updated_at": now}
    if step.reason:
        changes["state_reason"] = step.reason
    if step.current_wave != campaign.current_wave:
        changes["acknowledged_failures"] = 0
    if not ports.campaigns.update(campaign.campaign_id, campaign.version, changes):
        result.lost_races += 1  # another tick advanced it; its events are its own to report
        return ports.campaign(campaign.campaign_id)
    for event in step.events:
        result.state_changes.append(f"{campaign.campaign_id}: {event.kind} {event.detail}")
        ports.audit.record(campaign.campaign_id, event.kind.value, SYSTEM_OPERATOR, event.detail, now=now)
        if event.kind in ALERT_EVENTS:
            result.alerts += 1
            ports.notifier.alert(
                f"FleetOTA campaign {campaign.campaign_id} {event.kind.value}",
                {
                    "campaign_id": campaign.campaign_id,
                    "name": campaign.spec.name,
                    "event": event.kind.value,
                    "detail": event.detail,
                    "at": now.isoformat(),
                },
            )
    return ports.campaign(campaign.campaign_id)


def _notify_due(ports: CampaignPorts, campaign: Campaign, now: datetime, result: TickResult) -> None:
    budget = _Budget(campaign.spec.max_in_flight - campaign.counters.in_flight)
    # The counters say where something waits; waves with nothing waiting cost no request.
    waves = [w for w in range(campaign.current_wave + 1) if campaign.counters.waiting_in(w)]
    if not waves or not budget.open():
        return
    _from_hints(ports, campaign, now, result, budget)
    for wave in waves:
        if not budget.open():
            return
        _from_roster(ports, campaign, wave, now, result, budget)


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
    ports: CampaignPorts, campaign: Campaign, now: datetime, result: TickResult, budget: _Budget
) -> None:
    """Deferred and retried deployments whose time has come (the ``wait`` lane of the schedule)."""
    after = None
    while budget.open():
        page = budget.page()
        hints = ports.schedule.due(campaign.campaign_id, Lane.WAIT, now, page, after)
        if not hints:
            return
        after = hints[-1]
        budget.evaluated += len(hints)
        found = ports.deployments.get_many(campaign.campaign_id, [vin for _, vin in hints])
        rehints, candidates, chosen = Rehints(), {}, []
        for hint in hints:
            deployment = found.get(hint[1])
            if deployment is None or hint[1] in candidates:
                rehints.drop.append(hint)
            elif deployment.state not in WAITING or (deployment.next_action_at or now) > now:
                rehints.move(deployment, hint)
            elif deployment.wave <= campaign.current_wave:  # else keep it for its wave
                candidates[hint[1]] = deployment
                chosen.append(hint)
        verdicts = _consider_page(ports, campaign, list(candidates.values()), now, result)
        rehints.drop.extend(h for h in chosen if verdicts[h[1]] != "capacity")
        rehints.flush(ports, campaign.campaign_id, Lane.WAIT)
        budget.spend(verdicts)
        if len(hints) < page:
            return


def _from_roster(
    ports: CampaignPorts, campaign: Campaign, wave: int, now: datetime, result: TickResult, budget: _Budget
) -> None:
    """Deployments never looked at yet: the wave's roster from its cursor on, in rollout order."""
    size = campaign.wave_sizes[wave]
    cursor = campaign.cursor(wave)
    while cursor < size and budget.open():
        vins = ports.schedule.roster(campaign.campaign_id, wave, cursor, min(budget.page(), size - cursor))
        if not vins:
            logger.warning("campaign %s wave %d has no roster at %d", campaign.campaign_id, wave, cursor)
            return
        budget.evaluated += len(vins)
        found = ports.deployments.get_many(campaign.campaign_id, vins)
        fresh = [found[v] for v in vins if v in found and found[v].state is S.PENDING]
        due = [d for d in fresh if (d.next_action_at or now) <= now]
        verdicts = _consider_page(ports, campaign, due, now, result)
        budget.spend(verdicts)
        # The cursor passes every position that needs no more looking at, up to the first that does.
        passed = 0
        for vin in vins:
            if vin in found and found[vin].state is S.PENDING and verdicts.get(vin, "capacity") == "capacity":
                break
            passed += 1
        if passed:
            ports.campaigns.advance_cursor(campaign.campaign_id, wave, cursor + passed)
            cursor += passed
        if passed < len(vins):
            return


def _consider_page(
    ports: CampaignPorts, campaign: Campaign, deployments: list[Deployment], now: datetime, result: TickResult
) -> dict[str, str]:
    """Notify or defer each of ``deployments``; their verdicts by VIN (see ``_consider``)."""
    if not deployments:
        return {}
    plans = plan_downloads(ports, campaign, deployments, now)
    verdicts = {vin: plan.verdict for vin, plan in plans.items()}
    times = (now + NOTICE_LEASE, now + timedelta(seconds=campaign.spec.defer_recheck_s))
    # The hints go first, in batches: a claim or deferral that then dies midway is found again.
    ports.schedule.hint_many(
        campaign.campaign_id, Lane.ACTIVE, [(times[0], v) for v, e in verdicts.items() if e.eligible]
    )
    ports.schedule.hint_many(
        campaign.campaign_id, Lane.WAIT, [(times[1], v) for v, e in verdicts.items() if not e.eligible]
    )
    decrements = Decrements()

    def consider(deployment: Deployment) -> _Considered:
        try:
            return _consider(
                ports, campaign, deployment, plans[deployment.vin], times, now, result, decrements
            )
        except Exception as exc:  # re-raised below, once the other notices of the page are recorded
            return _Considered("error", error=exc)

    # Claiming, signing and storing each job is I/O: overlap it. The in-flight cap holds anyway:
    # each claim first reserves a slot with a conditional write on the campaign item.
    considered = dict(zip([d.vin for d in deployments], _pool().map(consider, deployments), strict=True))
    # The claims' decrements in one write (they wait for nothing: these deployments sat still).
    decrements.flush(ports)
    # The page's notices go out ten per request, then are recorded in one batch: each deployment's
    # hint at its deadline (the record that it was sent), then its lease hint dropped. A tick that
    # dies before this leaves the leases, and a later tick re-sends those notices (the vehicle
    # ignores a repeat of the job it has).
    sent = announce(ports, [c.job for c in considered.values() if c.job is not None])
    result.bump("notified", len(sent))
    rehints = Rehints()
    rehints.put[Lane.ACTIVE] = sent
    rehints.drop = [(times[0], vin) for _, vin in sent]
    rehints.flush(ports, campaign.campaign_id, Lane.ACTIVE)
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
    ports: CampaignPorts,
    campaign: Campaign,
    deployment: Deployment,
    plan: DownloadPlan,
    times: tuple[datetime, datetime],
    now: datetime,
    result: TickResult,
    decrements: Decrements,
) -> _Considered:
    """Notify one due deployment if its vehicle qualifies now, else defer it with the reason.

    ``times`` are the notice lease and the re-check time, whose hints the caller wrote. The verdict
    is "notified", "deferred", "lost" (another tick got there first) or "capacity".
    """
    lease, recheck = times
    verdict = plan.verdict
    if not verdict.eligible:
        sets = {"reason": verdict.reason, "deferred_at": now}
        if deployment.state is S.DEFERRED:
            applied = ports.deployments.touch(
                campaign.campaign_id,
                deployment.vin,
                deployment.state,
                deployment.version,
                {**sets, "next_action_at": recheck},
            )
        else:
            check_transition(deployment.state, S.DEFERRED)
            change = Transition.of(deployment, S.DEFERRED, next_action_at=recheck, sets=sets, hinted=True)
            applied = transition(ports, change) is Outcome.APPLIED
        result.bump("deferred" if applied else "lost_races")
        return _Considered("deferred" if applied else "lost")
    # The path goes through ELIGIBLE; one write records where it ends (NOTIFIED).
    check_transition(check_transition(deployment.state, S.ELIGIBLE), S.NOTIFIED)
    change = Transition.of(
        deployment,
        S.NOTIFIED,
        next_action_at=lease,
        sets={
            "attempt": deployment.attempt + 1,
            "notified_at": now,
            "progress_pct": 0,
            "cellular_granted": plan.cellular,
        },
        # ``install_at``/``staged_at``: an earlier attempt's install phase.
        # ``notice_sent``: an earlier attempt's mark from before sent hints; it must not vouch for this one.
        clears=("reason", "error_code", "detail", "notice_sent", "install_at", "staged_at"),
        max_in_flight=campaign.spec.max_in_flight,
        hinted=True,
    )
    outcome = transition(ports, change, decrements)
    if outcome is not Outcome.APPLIED:
        give_back(ports, campaign, plan)
    if outcome is Outcome.AT_CAPACITY:
        return _Considered("capacity")
    if outcome is Outcome.LOST_RACE:
        result.bump("lost_races")
        return _Considered("lost")
    claimed = deployment.changed(
        state=S.NOTIFIED,
        version=deployment.version + 1,
        attempt=deployment.attempt + 1,
        notified_at=now,
        next_action_at=lease,
        progress_pct=0,
        reason=None,
        error_code=None,
        detail=None,
        notice_sent=False,
        cellular_granted=plan.cellular,
        install_at=None,
        staged_at=None,
    )
    return _Considered("notified", prepare_job(ports, campaign, claimed, now))
