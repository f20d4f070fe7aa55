"""The health gate in the tick: a wave's soak, then canary vs control, before the next wave opens.

When :func:`~fleetota_core.domain.campaign.advance` would open the next wave of a campaign with
``soak_minutes``, the tick asks :func:`gate_next_wave` first:

- no gate yet for this wave: sample the canary (the wave's SUCCEEDED vehicles, on the release) and
  the control (the campaign's later-wave vehicles, not on the release, of a model and region the
  canary has), store their health counters as the soak baseline, and hold the wave;
- soaking: hold until the soak ends; then read the counters again and let the judge
  (domain/health_gate.py) compare the per-vehicle rates;
- PASS opens the wave; MARGINAL or FAIL pauses the campaign with the evidence (audit + alert);
  too little data keeps waiting, one soak at a time, and pauses once ``WAIT_FOR_DATA_SOAKS`` more
  soaks brought none;
- an operator who resumes a campaign the gate paused overrides the gate for that wave.
"""

from __future__ import annotations

import hashlib
from datetime import timedelta
from typing import TYPE_CHECKING

from fleetota_core.domain.campaign import SYSTEM_OPERATOR, CampaignState
from fleetota_core.domain.deployment import DeploymentState
from fleetota_core.domain.health_gate import GatePhase, GateStatus, GateVerdict, judge
from fleetota_core.domain.vehicle_health import SoakBaseline, soak_rates

if TYPE_CHECKING:
    from datetime import datetime

    from fleetota_core.domain.campaign import Campaign
    from fleetota_core.domain.vehicle import Vehicle
    from fleetota_core.domain.vehicle_health import HealthReading, Signal
    from fleetota_core.services.campaigns.ports import CampaignPorts, SoakBaselines
    from fleetota_core.services.campaigns.tick import TickResult

MAX_CANARY = 400
MAX_CONTROL = 800
CONTROL_CANDIDATES = 4 * MAX_CONTROL  # roster positions read to find the control sample
WAIT_FOR_DATA_SOAKS = 3
C = CampaignState


def _sample(vins: list[str], limit: int, salt: str) -> list[str]:
    """A deterministic spread of at most ``limit`` VINs (the same on every tick and retry)."""
    return sorted(vins, key=lambda v: hashlib.sha256(f"{salt}:{v}".encode()).digest())[:limit]


def gate_next_wave(
    ports: CampaignPorts, campaign: Campaign, now: datetime, result: TickResult
) -> tuple[bool, Campaign]:
    """Whether the next wave may open now, and the campaign as the gate left it."""
    wave, gate = campaign.current_wave, campaign.gate
    if gate is None or gate.wave != wave:
        return False, _start_soak(ports, campaign, now)
    if gate.phase is GatePhase.PASSED or gate.phase is GatePhase.OVERRIDDEN:
        return True, campaign
    if gate.phase is GatePhase.FAILED:
        # The gate paused it, and it runs again: an operator resumed it (audited as RESUME).
        changes = {"gate": gate.model_copy(update={"phase": GatePhase.OVERRIDDEN}), "updated_at": now}
        return _write(ports, campaign, changes)
    if now < gate.soak_ends_at:
        return False, campaign
    return _judge(ports, campaign, gate, now, result)


def _write(ports: CampaignPorts, campaign: Campaign, changes: dict[str, object]) -> tuple[bool, Campaign]:
    written = ports.campaigns.update(campaign.campaign_id, campaign.version, changes)
    fresh = ports.campaign(campaign.campaign_id)
    gate = changes.get("gate")
    opens = (
        written and isinstance(gate, GateStatus) and gate.phase in (GatePhase.PASSED, GatePhase.OVERRIDDEN)
    )
    return opens, fresh


def _baseline_store(ports: CampaignPorts) -> SoakBaselines:
    if ports.soak_baselines is None:
        raise RuntimeError("the health gate needs a soak baseline store (CampaignPorts.soak_baselines)")
    return ports.soak_baselines


def _start_soak(ports: CampaignPorts, campaign: Campaign, now: datetime) -> Campaign:
    cid, wave, version = campaign.campaign_id, campaign.current_wave, campaign.release.version
    succeeded = [
        d.vin for d in ports.deployments.in_state(cid, DeploymentState.SUCCEEDED, wave) if d.wave == wave
    ]
    canary_vins = _sample(succeeded, MAX_CANARY, cid)
    candidates: list[str] = []
    for later in range(wave + 1, len(campaign.wave_sizes)):
        want = CONTROL_CANDIDATES - len(candidates)
        if want <= 0:
            break
        candidates += ports.schedule.roster(cid, later, 0, min(want, campaign.wave_sizes[later]))
    seen = ports.vehicles.get_many(canary_vins + candidates)
    canary = {v: h for v in canary_vins if (h := _health(seen.get(v), version, True)) is not None}
    strata = {(seen[v].model, seen[v].region) for v in canary}
    comparable = [v for v in candidates if v in seen and (seen[v].model, seen[v].region) in strata]
    control = {
        v: h
        for v in _sample(comparable, MAX_CONTROL, cid)
        if (h := _health(seen.get(v), version, False)) is not None
    }
    _baseline_store(ports).put(cid, wave, SoakBaseline(canary, control))
    soak = timedelta(minutes=campaign.spec.soak_minutes or 0)
    gate = GateStatus(
        wave=wave,
        phase=GatePhase.SOAKING,
        soak_started_at=now,
        soak_ends_at=now + soak,
        give_up_at=now + soak * (1 + WAIT_FOR_DATA_SOAKS),
        canary_vehicles=len(canary),
        control_vehicles=len(control),
    )
    reason = (
        f"wave {wave + 1} soaking until {gate.soak_ends_at:%Y-%m-%d %H:%M:%S} UTC: health gate compares "
        f"{len(canary)} updated vehicles with {len(control)} not updated"
    )
    _, fresh = _write(ports, campaign, {"gate": gate, "state_reason": reason, "updated_at": now})
    if fresh.gate == gate:
        ports.audit.record(cid, "SOAK_STARTED", SYSTEM_OPERATOR, reason, now=now)
    return fresh


def _health(vehicle: Vehicle | None, version: str, on_release: bool) -> HealthReading | None:
    """The vehicle's counters if it is in the group (on the release or not) and reports them."""
    if vehicle is None or (vehicle.firmware_version == version) is not on_release:
        return None
    return vehicle.health


def _rates(
    baseline: dict[str, HealthReading], now_seen: dict[str, Vehicle], version: str, on_release: bool
) -> dict[Signal, list[float]]:
    out: dict[Signal, list[float]] = {}
    for vin, start in baseline.items():
        # A control vehicle updated meanwhile (or a canary rolled back) left its group.
        end = _health(now_seen.get(vin), version, on_release)
        if end is None:
            continue
        for signal, rate in soak_rates(start, end).items():
            out.setdefault(signal, []).append(rate)
    return out


def _judge(
    ports: CampaignPorts, campaign: Campaign, gate: GateStatus, now: datetime, result: TickResult
) -> tuple[bool, Campaign]:
    cid, version = campaign.campaign_id, campaign.release.version
    baseline = _baseline_store(ports).get(cid, gate.wave) or SoakBaseline({}, {})
    seen = ports.vehicles.get_many([*baseline.canary, *baseline.control])
    judgement = judge(
        _rates(baseline.canary, seen, version, True), _rates(baseline.control, seen, version, False)
    )
    evidence = judgement.evidence
    checked = gate.model_copy(
        update={
            "verdict": judgement.verdict,
            "score": judgement.score,
            "metrics": judgement.metrics,
            "evidence": evidence,
            "checked_at": now,
        }
    )
    if judgement.verdict is GateVerdict.PASS:
        passed = checked.model_copy(update={"phase": GatePhase.PASSED})
        opens, fresh = _write(ports, campaign, {"gate": passed, "updated_at": now})
        if opens:
            ports.audit.record(cid, "SOAK_PASSED", SYSTEM_OPERATOR, passed.summary(), now=now)
        return opens, fresh
    if judgement.verdict is GateVerdict.INSUFFICIENT and now < gate.give_up_at:
        soak = gate.soak_ends_at - gate.soak_started_at
        waiting = checked.model_copy(update={"phase": GatePhase.WAITING_FOR_DATA, "soak_ends_at": now + soak})
        reason = f"wave {gate.wave + 1} health gate waiting for data: {evidence}"
        return _write(ports, campaign, {"gate": waiting, "state_reason": reason, "updated_at": now})
    failed = checked.model_copy(update={"phase": GatePhase.FAILED})
    return False, _pause(ports, campaign, failed, now, result)


def _pause(
    ports: CampaignPorts, campaign: Campaign, gate: GateStatus, now: datetime, result: TickResult
) -> Campaign:
    """Pause with the evidence on the campaign, in the audit trail and in an alert."""
    cid = campaign.campaign_id
    detail = gate.summary()
    changes: dict[str, object] = {"state": C.PAUSED, "state_reason": detail, "gate": gate, "updated_at": now}
    if not ports.campaigns.update(cid, campaign.version, changes):
        result.lost_races += 1
        return ports.campaign(cid)
    result.state_changes.append(f"{cid}: AUTO_PAUSED {detail}")
    metrics = {m.signal.value: m.model_dump(mode="json") for m in gate.metrics}
    ports.audit.record(cid, "AUTO_PAUSED", SYSTEM_OPERATOR, detail, detail={"gate": metrics}, now=now)
    result.alerts += 1
    ports.notifier.alert(
        f"FleetOTA campaign {cid} AUTO_PAUSED",
        {
            "campaign_id": cid,
            "name": campaign.spec.name,
            "event": "AUTO_PAUSED",
            "detail": detail,
            "at": now.isoformat(),
        },
    )
    return ports.campaign(cid)
