"""Continuous campaigns: vehicles that match the target later join the campaign's open wave.

Discovery reads the fleet's change feed (:class:`FleetChanges`) from the campaign's watermark, never
the whole vehicles table: only vehicles heard from since (a newly provisioned vehicle's first
reading, a version change) are looked at, once per tick, and a vehicle known to be in the campaign
already costs nothing (``MEMBERS``). A feed that no longer reaches back to the
watermark is replaced, once, by the whole fleet from the snapshot.

Each vehicle joins with one atomic write (deployment created only if absent, counted on the campaign
in the same transaction), so a retry never enrols a vehicle twice and no count runs apart from the
deployments. Its ``wait`` hint follows the write; the watermark moves only after the tick's hints
are written, so a tick that dies in between reads the batch again and re-files the hint of
every joined deployment still PENDING (same key: a repeat is a no-op). The tick then treats a joined
deployment like a deferred one whose re-check is due.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from typing import TYPE_CHECKING

from fleetota_core.domain.campaign import SYSTEM_OPERATOR, CampaignState
from fleetota_core.domain.deployment import Deployment, DeploymentState, Lane
from fleetota_core.domain.enrolment import Enrolment, why_not

if TYPE_CHECKING:
    from datetime import datetime

    from fleetota_core.domain.campaign import Campaign
    from fleetota_core.domain.enrolment import ChangedVehicle
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
    if not batches:
        return 0
    # One look per vehicle and tick, however many of the batches name it (each reading is in one).
    joined = _enrol(ports, campaign, [c for b in batches for c in b.vehicles], now)
    if joined:
        detail = {"joined": len(joined), "wave": campaign.current_wave + 1, "vins": joined[:AUDITED_VINS]}
        why = "matched the target after the campaign was created"
        ports.audit.record(campaign.campaign_id, "ENROL", SYSTEM_OPERATOR, why, detail, now=now)
    # Last: a tick that dies before this reads the same batches again (see the module's docstring).
    ports.enrolments.move_watermark(campaign.campaign_id, batches[-1].token)
    return len(joined)


class _Members:
    """Per process, the VINs known to have a deployment in a campaign that enrolment need not look at
    again (anything but a joiner still PENDING, whose hint a retry may have to file). Deployments are
    never deleted and campaign ids never reused, so an entry never goes stale; the oldest are dropped
    past ``limit``. Without it, each vehicle of a rollout that has not updated yet would cost a
    deployment read on every tick, since every reading puts it in the feed."""

    def __init__(self, limit: int = 500_000) -> None:
        self.limit = limit
        self._known: OrderedDict[tuple[str, str], None] = OrderedDict()
        self._lock = threading.Lock()

    def unknown(self, campaign_id: str, vins: list[str]) -> list[str]:
        with self._lock:
            return [v for v in vins if (campaign_id, v) not in self._known]

    def add(self, campaign_id: str, vins: list[str]) -> None:
        with self._lock:
            self._known.update(((campaign_id, v), None) for v in vins)
            while len(self._known) > self.limit:
                self._known.popitem(last=False)


MEMBERS = _Members()


def _enrol(
    ports: CampaignPorts, campaign: Campaign, changes: list[ChangedVehicle], now: datetime
) -> list[str]:
    """The VINs of ``changes`` that joined; re-files the hints of earlier joiners still PENDING."""
    cid = campaign.campaign_id
    fits = MEMBERS.unknown(cid, list(dict.fromkeys(c.vin for c in changes if _fits(campaign, c))))
    if not fits:
        return []
    existing = ports.deployments.get_many(cid, fits)
    hints = [h for h in map(_hint, existing.values()) if h is not None]
    MEMBERS.add(cid, [d.vin for d in existing.values() if _hint(d) is None])
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
    """The cheap first look, on the feed's values; the registry has the last word. The region is
    left to the registry: the feed's comes from the vehicle's position, the registry's is its own."""
    spec, release = campaign.spec, campaign.release
    return (
        why_not(spec, release, change.vin, change.model, change.hw_rev, None, change.firmware_version) is None
    )


def _hint(deployment: Deployment | None) -> tuple[datetime, str] | None:
    """The ``wait`` hint of a joined deployment still PENDING, at the time it joined, so a hint
    filed again has the key of the first; None for any other deployment."""
    if deployment is None or deployment.joined_at is None or deployment.state is not S.PENDING:
        return None
    return deployment.joined_at, deployment.vin
