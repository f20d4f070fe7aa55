"""Publishing vehicles' jobs: sign each job document, store it, push the notifications in batches."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from fleetota_core.adapters.dynamo_items import sortable_ts
from fleetota_core.domain.job_document import JobDocument, SignedJobDocument

if TYPE_CHECKING:
    from fleetota_core.services.campaigns.backend import Campaign, OtaBackend


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


def notice_deadline(campaign: Campaign, item: dict[str, Any]) -> datetime | None:
    """When an in-flight deployment times out: its in-progress timeout after it was notified."""
    notified_at = item.get("notified_at")
    if not notified_at:
        return None
    start = datetime.strptime(notified_at, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
    return start + timedelta(seconds=campaign.spec.in_progress_timeout_s)


def sent_hint(campaign: Campaign, item: dict[str, Any]) -> tuple[str, str]:
    """The ``active`` hint at a notified deployment's deadline, filed once its notice went out.

    It is the record that the notice was sent: a later tick whose lease on the deployment ran out
    looks for this hint before re-sending (see ``update_tick_inflight``).
    """
    deadline = notice_deadline(campaign, item)
    if deadline is None:
        raise ValueError(f"deployment {item['vin']} has no notified_at")
    return sortable_ts(deadline), item["vin"]


@dataclass(frozen=True)
class PreparedJob:
    """A claimed deployment's signed and stored job document, and the notice that announces it."""

    vin: str
    notice: dict[str, Any]
    sent: tuple[str, str]  # its sent hint, filed once the notice went out


def prepare_job(backend: OtaBackend, campaign: Campaign, item: dict[str, Any], now: datetime) -> PreparedJob:
    """Sign and store the job for a deployment this tick has claimed (state NOTIFIED)."""
    signed = build_job(backend, campaign, item, now)
    key = backend.firmware.put_job(item["vin"], item["deployment_id"], signed)
    notice = {
        "type": "job",
        "vin": item["vin"],
        "campaign_id": campaign.campaign_id,
        "deployment_id": item["deployment_id"],
        "attempt": int(item["attempt"]),
        "document_url": backend.firmware.presigned_get(key, campaign.spec.job_ttl_s),
        "expires_at": signed.document.expires_at.isoformat(),
    }
    return PreparedJob(item["vin"], notice, sent_hint(campaign, item))


def announce(backend: OtaBackend, jobs: list[PreparedJob]) -> list[tuple[str, str]]:
    """Push the jobs' notices (ten per request); the sent hints of those that went out.

    The caller files those hints (in a batch) to record that the notices were sent and to look
    again at each deadline; a notice that did not go out keeps its lease and is re-sent later.
    """
    published = backend.notifier.notify_vehicles([(job.vin, job.notice) for job in jobs])
    return [job.sent for job in jobs if job.vin in published]
