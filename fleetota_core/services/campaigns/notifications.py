"""Publishing vehicles' jobs: sign each job document, store it, push the notifications in batches."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from fleetota_core.domain.delivery import DownloadNetworks, InstallPolicy
from fleetota_core.domain.delta import DeltaOffer, delta_for
from fleetota_core.domain.install_permit import PERMIT_LIFETIME, InstallPermit, SignedInstallPermit
from fleetota_core.domain.job_document import JobDocument, SignedJobDocument
from fleetota_core.services.campaigns.release_trust import check_release, delta_verifies

if TYPE_CHECKING:
    from fleetota_core.domain.campaign import Campaign
    from fleetota_core.domain.delivery import DeliveryPolicy
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
    delivery = campaign.spec.delivery
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
        install_policy=delivery.install.value,
        consent_deadline_s=delivery.consent_deadline_s if delivery.install is InstallPolicy.CONSENT else None,
        cellular_allowed=deployment.cellular_granted or unrestricted_cellular(delivery),
    )
    signature, key_id = ports.director_signer.sign(document.signed_bytes())
    return SignedJobDocument(document=document, signature=signature, key_id=key_id)


def unrestricted_cellular(delivery: DeliveryPolicy) -> bool:
    """Cellular is always fine: any network and no budget to account for."""
    return delivery.download_networks is DownloadNetworks.ANY and delivery.budget_bytes is None


def notice_deadline(campaign: Campaign, deployment: Deployment) -> datetime | None:
    """When an in-flight deployment times out: its in-progress timeout after it was notified, or
    after its install phase began (a staged image may wait for its window far longer than that)."""
    if deployment.notified_at is None:
        return None
    started = max(deployment.notified_at, deployment.install_at or deployment.notified_at)
    return started + timedelta(seconds=campaign.spec.in_progress_timeout_s)


def job_expiry(campaign: Campaign, deployment: Deployment) -> datetime | None:
    """When the deployment's job document expires: a staged image not installed by then times out."""
    if deployment.notified_at is None:
        return None
    return deployment.notified_at + timedelta(seconds=campaign.spec.job_ttl_s)


def install_notice(
    ports: CampaignPorts, campaign: Campaign, deployment: Deployment, now: datetime
) -> tuple[str, dict[str, Any]]:
    """The signed install permit for a staged deployment, as the notice that carries it.

    The permit travels in the notice itself: it names no URL and holds nothing secret, and the
    vehicle checks its director signature and its binding to the job it has staged.
    """
    permit = InstallPermit(
        vin=deployment.vin,
        campaign_id=campaign.campaign_id,
        deployment_id=deployment.deployment_id,
        attempt=deployment.attempt,
        target_version=campaign.release.version,
        issued_at=now,
        expires_at=now + PERMIT_LIFETIME,
    )
    signature, key_id = ports.director_signer.sign(permit.signed_bytes())
    signed = SignedInstallPermit(permit=permit, signature=signature, key_id=key_id)
    notice = {
        "type": "install",
        "vin": deployment.vin,
        "campaign_id": campaign.campaign_id,
        "deployment_id": deployment.deployment_id,
        "attempt": deployment.attempt,
        "permit": signed.model_dump(mode="json"),
    }
    return deployment.vin, notice


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
