"""Vehicle OTA reports (inside telemetry) -> deployment transitions, with the campaign counters.

Called by the telemetry pipeline for every batch. Illegal transitions are counted, never applied;
reports from an older attempt are ignored; a FAILED report is retried or final per the retry policy.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from fleetota_core.domain.delta import OtaArtifact, delivery_counts
from fleetota_core.domain.deployment import (
    BYTES_CELLULAR,
    BYTES_WIFI,
    STAGED,
    DeploymentState,
    IllegalTransition,
    Outcome,
    Transition,
    apply_report,
    decide_retry,
    delivery_count,
)
from fleetota_core.domain.telemetry import OtaReport
from fleetota_core.services.campaigns.transitions import transition

if TYPE_CHECKING:
    from collections.abc import Iterable
    from datetime import datetime

    from fleetota_core.domain.campaign import Campaign
    from fleetota_core.domain.deployment import Deployment
    from fleetota_core.services.campaigns.ports import CampaignPorts

S = DeploymentState
_DOWNLOADING = frozenset({S.NOTIFIED, S.DOWNLOADING})
_MAX_RACES = 3
# The attempt is over: its delivery (delta or full, bytes, fallback) is counted once, here.
_ATTEMPT_ENDS = frozenset({S.SUCCEEDED, S.FAILED, S.REJECTED, S.ROLLED_BACK})


@dataclass
class ReportCounts:
    applied: int = 0
    unchanged: int = 0  # acknowledgements and repeated progress
    illegal: int = 0
    stale: int = 0  # from an attempt older than the deployment's current one
    unknown: int = 0  # no such deployment
    retries_scheduled: int = 0

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


def _unpack(entry: Any) -> tuple[str, OtaReport, datetime | None]:
    """Accepts an OtaReport, a (vin, OtaReport) pair, or a TelemetryRecord carrying one."""
    if isinstance(entry, OtaReport):
        return entry.deployment_id.rsplit(".", 1)[-1], entry, None
    if isinstance(entry, tuple):
        return entry[0], entry[1], None
    return entry.vin, entry.ota, entry.ts


def apply_ota_reports(
    reports: Iterable[Any], ports: CampaignPorts, now: datetime | None = None
) -> ReportCounts:
    """Apply each vehicle report to its deployment, in the order given.

    Parameters
    ----------
    reports:
        ``OtaReport`` objects (the VIN is the suffix of ``deployment_id``), ``(vin, OtaReport)``
        pairs, or ``TelemetryRecord`` objects whose ``ota`` is set (their ``ts`` is used as now).
    now:
        When retries are scheduled from; defaults to the clock.
    """
    counts = ReportCounts()
    campaigns: dict[str, Campaign | None] = {}
    for entry in reports:
        vin, report, ts = _unpack(entry)
        if report is None:
            continue
        if report.campaign_id not in campaigns:
            campaigns[report.campaign_id] = ports.campaigns.get(report.campaign_id)
        campaign = campaigns[report.campaign_id]
        if campaign is None:
            counts.unknown += 1
            continue
        _apply_one(ports, campaign, vin, report, ts or now or ports.clock.now(), counts)
    return counts


def _apply_one(
    ports: CampaignPorts, campaign: Campaign, vin: str, report: OtaReport, now: datetime, counts: ReportCounts
) -> None:
    for _ in range(_MAX_RACES):
        deployment = ports.deployments.get(campaign.campaign_id, vin)
        if deployment is None:
            counts.unknown += 1
            return
        if report.attempt < deployment.attempt:
            counts.stale += 1
            return
        target = apply_report(deployment.state, report)
        if target is None:
            counts.unchanged += 1
            return
        if isinstance(target, IllegalTransition):
            counts.illegal += 1
            return
        change = _transition(campaign, deployment, target, report, now)
        if transition(ports, change) is Outcome.APPLIED:
            counts.applied += 1
            counts.retries_scheduled += change.new_state is S.RETRY_SCHEDULED
            count_download_bytes(ports, deployment, target, report)
            if target in _ATTEMPT_ENDS:
                _count_delivery(ports, campaign, report)
            return
    counts.stale += 1  # lost every race: someone else keeps moving this deployment


def _count_delivery(ports: CampaignPorts, campaign: Campaign, report: OtaReport) -> None:
    """Add the attempt's delivery to the campaign's counters (after the claim: counted once)."""
    delivery = report.delivery
    if delivery is None:
        return
    counts = delivery_counts(
        OtaArtifact(delivery.artifact),
        delivery.downloaded_bytes,
        delivery.fallback,
        campaign.release.manifest.size_bytes,
    )
    ports.campaigns.add_counters(campaign.campaign_id, {delivery_count(k): v for k, v in counts.items()})


def _transition(
    campaign: Campaign, deployment: Deployment, target: DeploymentState, report: OtaReport, now: datetime
) -> Transition:
    sets: dict[str, object] = {"progress_pct": report.progress_pct, "updated_at": now}
    if report.error_code:
        sets["error_code"] = report.error_code
    if report.detail:
        sets["detail"] = report.detail
    next_action_at = None
    final = target
    if target in (S.FAILED, S.TIMED_OUT):
        decision = decide_retry(campaign.spec.retry, target, report.error_code, report.attempt, now)
        if decision.retry and decision.at is not None:
            final = S.RETRY_SCHEDULED
            next_action_at = decision.at
    if target is S.DOWNLOADED:
        sets["staged_at"] = now
        next_action_at = now  # the tick decides at once: consent, window, or permit
    if target is S.INSTALLING and deployment.state in STAGED and deployment.install_at is None:
        sets["install_at"] = now  # the driver consented: the install phase starts now
    sets.update(_byte_fields(deployment, target, report))
    if target in (S.SUCCEEDED, S.FAILED, S.REJECTED, S.ROLLED_BACK) and final is target:
        sets["finished_at"] = now
        next_action_at = now
    return Transition.of(deployment, final, next_action_at=next_action_at, sets=sets)


def _ends_download(old: DeploymentState, target: DeploymentState, report: OtaReport) -> bool:
    """The report that takes a deployment out of its download carries the attempt's byte counts.

    Counting only on that transition counts each attempt once: the write is conditional on the
    deployment's state and version, so a redelivered or repeated report moves nothing again.
    """
    has_bytes = report.bytes_wifi is not None or report.bytes_cellular is not None
    return has_bytes and old in _DOWNLOADING and target not in _DOWNLOADING


def _byte_fields(deployment: Deployment, target: DeploymentState, report: OtaReport) -> dict[str, object]:
    if not _ends_download(deployment.state, target, report):
        return {}
    return {
        "bytes_wifi": (deployment.bytes_wifi or 0) + (report.bytes_wifi or 0),
        "bytes_cellular": (deployment.bytes_cellular or 0) + (report.bytes_cellular or 0),
    }


def count_download_bytes(
    ports: CampaignPorts, deployment: Deployment, target: DeploymentState, report: OtaReport
) -> None:
    """Add an attempt's downloaded bytes to the campaign's Wi-Fi and cellular counters."""
    if not _ends_download(deployment.state, target, report):
        return
    deltas = {BYTES_WIFI: report.bytes_wifi or 0, BYTES_CELLULAR: report.bytes_cellular or 0}
    ports.campaigns.add_counters(deployment.campaign_id, {k: v for k, v in deltas.items() if v})
