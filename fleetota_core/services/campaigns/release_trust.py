"""Nothing is signed that points at a release whose manifest does not verify with the image key.

``campaign create`` and every tick check the release before they sign a job document for it: the
manifest (version, sha256, size, models, ...) must be exactly what the image key signed. A manifest
rewritten in the bucket or in the campaign item, or one signed by the director key, is refused.
"""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING

from fleetota_core.domain.campaign import SYSTEM_OPERATOR, CampaignState
from fleetota_core.domain.firmware import load_public_key, verify_signature
from fleetota_core.errors import IntegrityError

if TYPE_CHECKING:
    from datetime import datetime

    from fleetota_core.domain.campaign import Campaign
    from fleetota_core.domain.firmware import FirmwareRelease, SignedDelta
    from fleetota_core.services.campaigns.ports import CampaignPorts
    from fleetota_core.services.campaigns.tick import TickResult


@lru_cache(maxsize=256)
def _verifies(public_der: bytes, payload: bytes, signature: str) -> bool:
    # A tick checks each running campaign's release once: about 0.1 ms, then a cache hit.
    return verify_signature(load_public_key(public_der), payload, signature)


def release_problem(ports: CampaignPorts, release: FirmwareRelease) -> str | None:
    """Why ``release`` must not be used (one sentence for the operator), or None when it verifies."""
    payload = release.manifest.signed_bytes()
    if _verifies(ports.image_signer.public_key_der(), payload, release.signature):
        return None
    if _verifies(ports.director_signer.public_key_der(), payload, release.signature):
        why = "is signed by the director key, not the image key"
    else:
        why = "does not verify with the image key (altered after signing, or signed by another key)"
    return (
        f"release {release.version}: its manifest (version, sha256, size, models) {why}; "
        "nothing pointing at it was signed. Restore or republish the release."
    )


def delta_verifies(ports: CampaignPorts, release: FirmwareRelease, delta: SignedDelta) -> bool:
    """Whether ``delta`` is signed by the image key and makes exactly ``release``'s signed image."""
    payload = delta.manifest.signed_bytes()
    signed = _verifies(ports.image_signer.public_key_der(), payload, delta.signature)
    return signed and delta.manifest.fits(release.manifest)


def check_artifact(ports: CampaignPorts, release: FirmwareRelease) -> FirmwareRelease:
    """``release`` if its artifact in the bucket has the signed size (and recorded sha256).

    A HEAD request, no download: a swapped artifact of another size, or one whose upload recorded
    another sha256, is refused before any vehicle is asked to fetch it. A same-size swap without
    metadata is left to the vehicles' sha256 check (``CHECKSUM_MISMATCH``).
    """
    manifest = release.manifest
    facts = ports.releases.artifact_facts(manifest.artifact_key)
    where = f"release {release.version}: the artifact {manifest.artifact_key}"
    if facts is None:
        raise IntegrityError(f"{where} is missing from the firmware bucket; republish the release")
    size, sha256 = facts
    if size != manifest.size_bytes:
        raise IntegrityError(
            f"{where} is {size} bytes, the signed manifest says {manifest.size_bytes}; "
            "it was replaced after publishing. Restore or republish the release."
        )
    if sha256 is not None and sha256 != manifest.sha256:
        raise IntegrityError(
            f"{where} was recorded with sha256 {sha256[:16]}..., the signed manifest says "
            f"{manifest.sha256[:16]}...; it was replaced after publishing. Restore or republish the release."
        )
    return release


def check_release(ports: CampaignPorts, release: FirmwareRelease) -> FirmwareRelease:
    """``release`` if its manifest verifies with the image key, else :class:`IntegrityError`."""
    problem = release_problem(ports, release)
    if problem is not None:
        raise IntegrityError(problem)
    return release


def hold_untrusted(
    ports: CampaignPorts, campaign: Campaign, problem: str, now: datetime, result: TickResult
) -> Campaign:
    """Pause a campaign whose release no longer verifies, with the reason, and alert once."""
    reason = f"paused: {problem}"
    if campaign.state_reason == reason and campaign.state is CampaignState.PAUSED:
        return campaign
    changes: dict[str, object] = {"state": CampaignState.PAUSED, "state_reason": reason, "updated_at": now}
    if not ports.campaigns.update(campaign.campaign_id, campaign.version, changes):
        result.lost_races += 1
        return ports.campaign(campaign.campaign_id)
    result.state_changes.append(f"{campaign.campaign_id}: RELEASE_UNTRUSTED {problem}")
    ports.audit.record(campaign.campaign_id, "RELEASE_UNTRUSTED", SYSTEM_OPERATOR, problem, now=now)
    result.alerts += 1
    ports.notifier.alert(
        f"FleetOTA campaign {campaign.campaign_id} paused: release does not verify",
        {
            "campaign_id": campaign.campaign_id,
            "name": campaign.spec.name,
            "event": "RELEASE_UNTRUSTED",
            "detail": problem,
            "at": now.isoformat(),
        },
    )
    return ports.campaign(campaign.campaign_id)
