"""Publishing one vehicle's job: sign the job document, store it, push the notification."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from fleetota_core.adapters.dynamo_items import sortable_ts
from fleetota_core.domain.job_document import JobDocument, SignedJobDocument

if TYPE_CHECKING:
    from fleetota_core.services.campaigns_backend import Campaign, OtaBackend


def build_job(
    backend: OtaBackend, campaign: Campaign, item: dict[str, Any], now: datetime
) -> SignedJobDocument:
    ttl = campaign.spec.job_ttl_s
    document = JobDocument(
        campaign_id=campaign.campaign_id,
        deployment_id=item["deployment_id"],
        vin=item["vin"],
        attempt=int(item["attempt"]),
        release=campaign.release,
        download_url=backend.firmware.presigned_get(campaign.release.manifest.artifact_key, ttl),
        issued_at=now,
        expires_at=now + timedelta(seconds=ttl),
        allow_downgrade=campaign.spec.allow_downgrade,
    )
    signature, key_id = backend.signer.sign(document.signed_bytes())
    return SignedJobDocument(document=document, signature=signature, key_id=key_id)


def send_job(
    backend: OtaBackend, campaign: Campaign, item: dict[str, Any], version: int, now: datetime
) -> bool:
    """Sign, store and announce the job for a deployment this tick has claimed (state NOTIFIED).

    Marks the notice sent and starts the in-progress timeout. False if the deployment moved on
    meanwhile (a report arrived first), which is harmless: the vehicle already has its job.
    """
    signed = build_job(backend, campaign, item, now)
    key = backend.firmware.put_job(item["vin"], item["deployment_id"], signed)
    backend.notifier.notify_vehicle(
        item["vin"],
        {
            "type": "job",
            "vin": item["vin"],
            "campaign_id": campaign.campaign_id,
            "deployment_id": item["deployment_id"],
            "attempt": int(item["attempt"]),
            "document_url": backend.firmware.presigned_get(key, campaign.spec.job_ttl_s),
            "expires_at": signed.document.expires_at.isoformat(),
        },
    )
    deadline = now + timedelta(seconds=campaign.spec.in_progress_timeout_s)
    sets = {"notice_sent": True, "next_action_at": sortable_ts(deadline), "job_key": key}
    return backend.deployments.touch(campaign.campaign_id, item["vin"], "NOTIFIED", version, sets)
