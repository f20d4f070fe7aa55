"""Publishing vehicles' jobs: sign each job document, store it, push the notifications in batches."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from fleetota_core.domain.delta import DeltaOffer, delta_for
from fleetota_core.domain.job_document import JobDocument, SignedJobDocument
from fleetota_core.services.campaigns.release_trust import check_release, delta_verifies

if TYPE_CHECKING:
    from fleetota_core.domain.campaign import Campaign
    from fleetota_core.domain.deployment import Deployment
    from fleetota_core.services.campaigns.ports import CampaignPorts, Hint


def build_job(
    ports: CampaignPorts, campaign: Campaign, deployment: Deployment, now: datetime
) -> SignedJobDocument:
    """The job document for one deployment attempt, signed with the director key.

    Bound to the VIN, campaign, deployment, attempt and release, valid for the campaign's job_ttl_s
    (at most 30 days); the release must verify with the image key, or nothing is signed. A vehicle
    whose version (as targeted) has a delta in the release is offered it beside the full image; a
    delta that does not verify with the image key is never offered.
    """
    ttl = campaign.spec.job_ttl_s
    check_release(ports, campaign.release)
    delta = delta_for(campaign.release.deltas, deployment.from_version)
    offer = None
    if delta is not None and delta_verifies(ports, campaign.release, delta):
        url = ports.releases.presigned_get(delta.manifest.artifact_key, ttl)
        offer = DeltaOffer(delta=delta, download_url=url)
    document = JobDocument(
        campaign_id=campaign.campaign_id,
        deployment_id=deployment.deployment_id,
        vin=deployment.vin,
        attempt=deployment.attempt,
        release=campaign.release.without_deltas(),
        download_url=ports.releases.presigned_get(campaign.release.manifest.artifact_key, ttl),
        issued_at=now,
        expires_at=now + timedelta(seconds=ttl),
        allow_downgrade=campaign.spec.allow_downgrade,
        delta=offer,
    )
    signature, key_id = ports.director_signer.sign(document.signed_bytes())
    return SignedJobDocument(document=document, signature=signature, key_id=key_id)


def notice_deadline(campaign: Campaign, deployment: Deployment) -> datetime | None:
    """When an in-flight deployment times out: its in-progress timeout after it was notified."""
    if deployment.notified_at is None:
        return None
    return deployment.notified_at + timedelta(seconds=campaign.spec.in_progress_timeout_s)


def sent_hint(campaign: Campaign, deployment: Deployment) -> Hint:
    """The ``active`` hint at a notified deployment's deadline, filed once its notice went out.

    It is the record that the notice was sent: a later tick whose lease on the deployment ran out
    looks for this hint before re-sending (see ``tick_inflight``).
    """
    deadline = notice_deadline(campaign, deployment)
    if deadline is None:
        raise ValueError(f"deployment {deployment.vin} has no notified_at")
    return deadline, deployment.vin


@dataclass(frozen=True)
class PreparedJob:
    """A claimed deployment's signed and stored job document, and the notice that announces it."""

    vin: str
    notice: dict[str, Any]
    sent: Hint  # its sent hint, filed once the notice went out


def prepare_job(
    ports: CampaignPorts, campaign: Campaign, deployment: Deployment, now: datetime
) -> PreparedJob:
    """Sign and store the job for a deployment this tick has claimed (state NOTIFIED)."""
    signed = build_job(ports, campaign, deployment, now)
    key = ports.releases.put_job(deployment.vin, deployment.deployment_id, signed)
    notice = {
        "type": "job",
        "vin": deployment.vin,
        "campaign_id": campaign.campaign_id,
        "deployment_id": deployment.deployment_id,
        "attempt": deployment.attempt,
        "target_version": campaign.release.version,
        # A key, not a presigned URL: the notice fans out to every subscriber of the topic, and only
        # the vehicle itself may read its document (VehicleGatewayRole, jobs/${aws:PrincipalTag/vin}/*).
        "document_key": key,
        "expires_at": signed.document.expires_at.isoformat(),
    }
    return PreparedJob(deployment.vin, notice, sent_hint(campaign, deployment))


def announce(ports: CampaignPorts, jobs: list[PreparedJob]) -> list[Hint]:
    """Push the jobs' notices (ten per request); the sent hints of those that went out.

    The caller files those hints (in a batch) to record that the notices were sent and to look
    again at each deadline; a notice that did not go out keeps its lease and is re-sent later.
    """
    published = ports.notifier.notify_vehicles([(job.vin, job.notice) for job in jobs])
    return [job.sent for job in jobs if job.vin in published]
