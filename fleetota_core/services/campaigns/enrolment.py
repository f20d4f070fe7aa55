"""Continuous campaigns: vehicles that match the target later join the campaign's open wave.

Discovery reads the fleet's change feed (:class:`FleetChanges`) from the campaign's watermark, never
the whole vehicles table: only vehicles whose state was written since (a newly provisioned vehicle's
first reading, a version change, a heartbeat) are looked at. A feed that no longer reaches back to the
watermark is replaced, once, by the whole fleet from the snapshot.

Each vehicle joins with one atomic write (deployment created only if absent, counted on the campaign
in the same transaction), so a retry never enrols a vehicle twice and no count runs apart from the
deployments. Its ``wait`` hint follows the write; the watermark moves only after the hints of its
batch are written, so a tick that dies in between reads the batch again and re-files the hint of
every joined deployment still PENDING (same key: a repeat is a no-op). The tick then treats a joined
deployment like a deferred one whose re-check is due.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from fleetota_core.domain.campaign import SYSTEM_OPERATOR, CampaignState
from fleetota_core.domain.deployment import Deployment, DeploymentState, Lane
from fleetota_core.domain.enrolment import Enrolment, why_not

if TYPE_CHECKING:
    from datetime import datetime

    from fleetota_core.domain.campaign import Campaign
    from fleetota_core.domain.enrolment import ChangedVehicle, FleetChangeBatch
    from fleetota_core.services.campaigns.ports import CampaignPorts

C = CampaignState
S = DeploymentState
logger = logging.getLogger(__name__)
# Feed batches read per campaign and tick; the rest waits for the next tick (the watermark says where).
MAX_BATCHES_PER_TICK = 200
AUDITED_VINS = 100  # VINs named in one ENROL audit entry; the count is always whole
TAKING = (C.RUNNING, C.PAUSED)


def enrol_new_vehicles(ports: CampaignPorts, campaign: Campaign, now: datetime) -> int:
    """Let vehicles that match ``campaign`` since its watermark join its open wave; how many joined.

    Only a continuous campaign that is running or paused (joined vehicles then wait for the resume).
    """
    if not campaign.enrolling or campaign.state not in TAKING:
        return 0
    feed = ports.fleet_changes
    # No watermark (a campaign written without one): the feed answers None, and the whole fleet is read.
    batches = feed.since(campaign.enrolment_watermark, MAX_BATCHES_PER_TICK)
    if batches is None:
        logger.warning(
            "campaign %s: the change feed no longer reaches back to %r; reading the whole fleet",
            campaign.campaign_id,
            campaign.enrolment_watermark,
        )
        batches = [feed.whole_fleet()]
    joined = 0
    for batch in batches:
        vins = _enrol_batch(ports, campaign, batch, now)
        if vins:
            joined += len(vins)
            detail = {"joined": len(vins), "wave": campaign.current_wave + 1, "vins": vins[:AUDITED_VINS]}
            why = "matched the target after the campaign was created"
            ports.audit.record(campaign.campaign_id, "ENROL", SYSTEM_OPERATOR, why, detail, now=now)
        ports.enrolments.move_watermark(campaign.campaign_id, batch.token)
    return joined


def _enrol_batch(
    ports: CampaignPorts, campaign: Campaign, batch: FleetChangeBatch, now: datetime
) -> list[str]:
    """The VINs of ``batch`` that joined; re-files the hints of earlier joiners still PENDING."""
    fits = list(dict.fromkeys(c.vin for c in batch.vehicles if _fits(campaign, c)))
    if not fits:
        return []
    cid = campaign.campaign_id
    existing = ports.deployments.get_many(cid, fits)
    hints = [h for h in map(_hint, existing.values()) if h is not None]
    # Identity from the registry (only active vehicles), never from what the feed carried.
    vehicles = ports.vehicles.get_many([v for v in fits if v not in existing])
    joined: list[str] = []
    for vin, v in vehicles.items():
        if why_not(campaign.spec, campaign.release, vin, v.model, v.hw_rev, v.region, v.firmware_version):
            continue
        deployment = Deployment(
            campaign_id=cid,
            vin=vin,
            wave=campaign.current_wave,
            state=S.PENDING,
            next_action_at=now,
            model=v.model,
            hw_rev=v.hw_rev,
            from_version=v.firmware_version,
            created_at=now,
            joined_at=now,
        )
        outcome = ports.enrolments.enrol(deployment)
        if outcome is Enrolment.JOINED:
            joined.append(vin)
            hints.append((now, vin))
        elif outcome is Enrolment.ALREADY:
            # Another tick enrolled it just now; if it died before the hint, this one files it.
            hint = _hint(ports.deployments.get(cid, vin))
            if hint is not None:
                hints.append(hint)
        else:  # finished, aborted or completed meanwhile: nobody else joins
            break
    ports.schedule.hint_many(cid, Lane.WAIT, hints)
    return joined


def _fits(campaign: Campaign, change: ChangedVehicle) -> bool:
    """The cheap first look, on the feed's values; the registry has the last word."""
    return (
        why_not(
            campaign.spec,
            campaign.release,
            change.vin,
            change.model,
            change.hw_rev,
            change.region,
            change.firmware_version,
        )
        is None
    )


def _hint(deployment: Deployment | None) -> tuple[datetime, str] | None:
    """The ``wait`` hint of a joined deployment still PENDING, at the time it joined, so a hint
    filed again has the key of the first; None for any other deployment."""
    if deployment is None or deployment.joined_at is None or deployment.state is not S.PENDING:
        return None
    return deployment.joined_at, deployment.vin
