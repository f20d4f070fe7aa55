"""Compliance evidence: a vehicle's software history, and who runs (or awaits) a release.

Both read what the campaign ports already hold: deployments (by VIN, or per campaign), campaigns
(release, signed image hash, creator, approver) and the vehicles' latest telemetry. Nothing is
written. ``docs/campaigns.md`` explains how each interval is dated.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from fleetota_core.domain.deployment import IN_FLIGHT, STAGED, WAITING, DeploymentState
from fleetota_core.domain.software_history import (
    INSTALLED,
    UNCHANGED,
    InstallRecord,
    SoftwareHistory,
    build_history,
)
from fleetota_core.domain.vin import InvalidVINError, validate_vin
from fleetota_core.errors import InputError, ResourceNotFoundError

if TYPE_CHECKING:
    from datetime import datetime

    from fleetota_core.domain.campaign import Campaign
    from fleetota_core.domain.deployment import Deployment
    from fleetota_core.services.campaigns.ports import CampaignPorts

S = DeploymentState
# Where a vehicle stands with a release, in the order reports list them.
RELEASE_STATUSES = ("running", "installed, not yet reported", "pending", "failed", "cancelled")
# The release report's columns, in the order tables and CSV files show them.
RELEASE_COLUMNS = ("vin", "status", "since", "model", "region", "reported_version", "campaign_id", "detail")


def vin_history(vin: str, ports: CampaignPorts) -> SoftwareHistory:
    """Every version ``vin`` ran, from when to when, with campaigns, image hashes and approvals."""
    try:
        vin = validate_vin(vin.strip().upper())
    except InvalidVINError as exc:
        raise InputError(f"not a VIN: {exc}") from exc
    deployments = ports.deployments.for_vin(vin)
    vehicle = ports.vehicles.get_many([vin]).get(vin)
    if not deployments and vehicle is None:
        raise ResourceNotFoundError(
            f"vehicle {vin} has no record here: it never reported and no campaign targeted it"
        )
    campaigns = _campaigns(ports, {d.campaign_id for d in deployments})
    records = [_record(d, campaigns[d.campaign_id]) for d in deployments if d.campaign_id in campaigns]
    return build_history(
        vin,
        records,
        vehicle.firmware_version if vehicle else None,
        vehicle.last_ts if vehicle else None,
    )


@dataclass(frozen=True)
class ReleaseStatus:
    """Where one vehicle stands with a release."""

    vin: str
    status: str  # running | installed, not yet reported | pending | failed
    model: str | None
    region: str | None
    reported_version: str | None
    since: datetime | None
    campaign_id: str | None
    detail: str | None

    def as_row(self) -> dict[str, Any]:
        row = asdict(self)
        row["since"] = self.since.isoformat() if self.since else None
        return row


def release_report(version: str, ports: CampaignPorts) -> list[ReleaseStatus]:
    """Which vehicles run ``version`` and since when, and which of its campaigns' vehicles still wait.

    Reads every vehicle (a scan, like targeting) and each of the release's campaigns' deployments.
    """
    if ports.releases.get_release(version) is None:
        raise ResourceNotFoundError(f"firmware {version} is not published")
    latest: dict[str, Deployment] = {}
    for campaign in ports.campaigns.list_all():
        if campaign.release.version != version:
            continue
        for deployment in ports.deployments.for_campaign(campaign.campaign_id):
            known = latest.get(deployment.vin)
            if known is None or _when(deployment) >= _when(known):
                latest[deployment.vin] = deployment
    vehicles = {v.vin: v for v in ports.vehicles.all()}
    rows: list[ReleaseStatus] = []
    for vin in sorted(set(latest) | {v for v, veh in vehicles.items() if veh.firmware_version == version}):
        vehicle, d = vehicles.get(vin), latest.get(vin)
        running = vehicle is not None and vehicle.firmware_version == version
        if running:
            status = "running"
        elif d is not None and d.state is S.SUCCEEDED:
            status = "installed, not yet reported"
        elif d is not None and (d.state in WAITING or d.state in IN_FLIGHT or d.state in STAGED):
            status = "pending"
        elif d is not None and d.state.value in UNCHANGED:
            status = "failed" if d.state is not S.CANCELLED else "cancelled"
        else:
            continue
        installed = d is not None and d.state is S.SUCCEEDED
        rows.append(
            ReleaseStatus(
                vin=vin,
                status=status,
                model=vehicle.model if vehicle else (d.model if d else None),
                region=vehicle.region if vehicle else None,
                reported_version=vehicle.firmware_version if vehicle else None,
                since=d.finished_at if installed and d else None,
                campaign_id=d.campaign_id if d else None,
                detail=_detail(d, running),
            )
        )
    return rows


def _detail(d: Deployment | None, running: bool) -> str | None:
    if d is None:
        return "no FleetOTA campaign installed it" if running else None
    if d.state.value == INSTALLED:
        return None
    return " ".join(str(x) for x in (d.state.value, d.error_code or d.reason or "") if x)


def _when(d: Deployment) -> str:
    stamp = d.finished_at or d.updated_at or d.created_at
    return stamp.isoformat() if stamp else ""


def _campaigns(ports: CampaignPorts, ids: set[str]) -> dict[str, Campaign]:
    found = {cid: ports.campaigns.get(cid) for cid in sorted(ids)}
    return {cid: c for cid, c in found.items() if c is not None}


def _record(d: Deployment, campaign: Campaign) -> InstallRecord:
    return InstallRecord(
        campaign_id=d.campaign_id,
        campaign_name=campaign.spec.name,
        release_version=campaign.release.version,
        release_sha256=campaign.release.manifest.sha256,
        state=d.state.value,
        attempt=d.attempt,
        from_version=d.from_version,
        finished_at=d.finished_at,
        error_code=d.error_code,
        created_by=campaign.created_by,
        approved_by=campaign.approved_by,
    )


HISTORY_COLUMNS = (
    "kind", "version", "since", "until", "result", "error_code", "campaign_id", "campaign_name",
    "release_sha256", "created_by", "approved_by", "evidence",
)  # fmt: skip


def history_rows(history: SoftwareHistory) -> list[dict[str, Any]]:
    """One flat row per interval (``kind=ran``) and per attempt (``kind=attempt``), for CSV and tables."""
    rows = []
    for i in history.intervals:
        row = {**i.as_row(), "kind": "ran", "result": "running" if i.until is None else "ran"}
        rows.append({c: row.get(c) for c in HISTORY_COLUMNS})
    for a in history.attempts:
        when = a.finished_at.isoformat() if a.finished_at else None
        row = {
            **asdict(a),
            "kind": "attempt",
            "version": a.release_version,
            "since": when,
            "until": when,
            "result": a.state,
            "evidence": f"attempt {a.attempt} from {a.from_version or 'unknown'}",
        }
        rows.append({c: row.get(c) for c in HISTORY_COLUMNS})
    return rows
