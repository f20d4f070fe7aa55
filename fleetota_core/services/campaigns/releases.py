"""Publishing and listing firmware releases: upload, hash, sign the manifest with KMS."""

from __future__ import annotations

import hashlib
import logging
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from pydantic import ValidationError as PydanticValidationError

from fleetota_core.domain.firmware import (
    DeltaManifest,
    FirmwareManifest,
    FirmwareRelease,
    SemVer,
    SignedDelta,
)
from fleetota_core.errors import ConflictError, InputError, ResourceNotFoundError, ValidationError

if TYPE_CHECKING:
    from collections.abc import Sequence

    from fleetota_core.domain.delta import DeltaBuild
    from fleetota_core.services.campaigns.ports import CampaignPorts

logger = logging.getLogger(__name__)


def known_models(ports: CampaignPorts) -> set[str]:
    """Models of the fleet targeting sees (the fleet snapshot, or the vehicles table before the first
    snapshot); publishing for any other is an operator slip."""
    return {vehicle.model for vehicle in ports.vehicles.all()}


def publish_release(
    file_bytes: bytes,
    version: str,
    models: Sequence[str],
    hw_revs: Sequence[str],
    min_from_version: str | None,
    notes: str,
    operator: str,
    ports: CampaignPorts,
    *,
    filename: str = "firmware.bin",
    allowed_models: set[str] | None = None,
    deltas: Sequence[DeltaBuild] = (),
) -> FirmwareRelease:
    """Upload an artifact, sign its manifest with the image key (KMS) and record who did it.

    ``allowed_models`` defaults to the models in the vehicles table. Everything that can be checked
    is checked before the upload (the manifest is built and must be signable); if a later step fails,
    the uploaded artifacts are deleted again unless a release of ``version`` points at them.
    ``deltas`` (made by ``fleetota_core.services.delta``) are uploaded beside the full image, each
    with its own manifest signed by the image key.
    """
    SemVer(version)  # raises ValidationError naming the semver rule
    if min_from_version:
        SemVer(min_from_version)
    if not file_bytes:
        raise ValidationError(f"firmware file {filename!r} is empty")
    models = tuple(dict.fromkeys(m.strip() for m in models if m.strip()))
    if not models:
        raise ValidationError("a release needs at least one model (--models)")
    known = allowed_models if allowed_models is not None else known_models(ports)
    unknown = [m for m in models if m not in known]
    if unknown:
        listing = ", ".join(sorted(known)) or (
            "none yet: start the simulator or ingest telemetry first (a new vehicle joins the fleet "
            "snapshot about a minute after its first reading)"
        )
        raise ValidationError(f"unknown model(s) {', '.join(unknown)}; known models: {listing}")
    if ports.releases.release_exists(version):
        raise ConflictError(f"firmware {version} is already published; pick a new version")
    digest = hashlib.sha256(file_bytes).hexdigest()
    manifest = _manifest(
        version=version,
        sha256=digest,
        size_bytes=len(file_bytes),
        models=models,
        hw_revs=tuple(h.strip() for h in hw_revs if h.strip()),
        min_from_version=min_from_version or None,
        artifact_key=ports.releases.artifact_key(version, filename),
        notes=notes,
        created_at=datetime.now(UTC),
        created_by=operator,
    )
    keys = [ports.releases.put_artifact(version, filename, file_bytes, digest)]
    try:
        signed_deltas = tuple(_upload_delta(ports, manifest, build, keys) for build in deltas)
        signature, key_id = ports.image_signer.sign(manifest.signed_bytes())
        release = FirmwareRelease(manifest=manifest, signature=signature, key_id=key_id, deltas=signed_deltas)
        ports.releases.put_release(release)
    except BaseException:
        for key in keys:
            _discard_artifact(ports, version, key)
        raise
    detail: dict[str, object] = {"sha256": digest, "size": len(file_bytes)}
    if signed_deltas:
        detail["deltas"] = {d.source_version: d.manifest.size_bytes for d in signed_deltas}
    ports.audit.record(f"firmware#{version}", "PUBLISH", operator, notes, detail)
    return release


def _upload_delta(
    ports: CampaignPorts, target: FirmwareManifest, build: DeltaBuild, keys: list[str]
) -> SignedDelta:
    """Upload one delta next to the full image and sign its manifest with the image key."""
    source = build.source
    filename = f"delta-from-{source.version}.zst"
    digest = hashlib.sha256(build.data).hexdigest()
    try:
        manifest = DeltaManifest(
            target_version=target.version,
            target_sha256=target.sha256,
            target_size_bytes=target.size_bytes,
            source_version=source.version,
            source_sha256=source.sha256,
            source_size_bytes=source.size_bytes,
            window_log=build.window_log,
            sha256=digest,
            size_bytes=len(build.data),
            artifact_key=ports.releases.artifact_key(target.version, filename),
            created_at=target.created_at,
            created_by=target.created_by,
        )
    except PydanticValidationError as exc:
        raise InputError(f"invalid delta from {source.version}: {exc.errors()[0]['msg']}") from exc
    keys.append(ports.releases.put_artifact(target.version, filename, build.data, digest))
    signature, key_id = ports.image_signer.sign(manifest.signed_bytes())
    return SignedDelta(manifest=manifest, signature=signature, key_id=key_id)


def _manifest(**fields: object) -> FirmwareManifest:
    try:
        return FirmwareManifest.model_validate(fields)
    except PydanticValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc'])) or 'manifest'}: {e['msg']}" for e in exc.errors()
        )
        raise InputError(f"invalid firmware release: {problems}") from exc


def _discard_artifact(ports: CampaignPorts, version: str, key: str) -> None:
    """Delete an uploaded artifact after a failed publish, unless a release points at it after all.

    A release can exist if the failed write landed anyway (a timeout) or another publish of the same
    version won the race (same key); then the artifact is that release's. Best effort: the caller
    re-raises the publish's own error, which is what the operator needs to read.
    """
    try:
        if not ports.releases.release_exists(version):
            ports.releases.delete_artifact(key)
    except Exception:
        logger.warning(
            "could not delete artifact %s after a failed publish of %s", key, version, exc_info=True
        )


def list_releases(ports: CampaignPorts) -> list[FirmwareRelease]:
    """Every published release, newest version first."""
    releases = ports.releases.list_releases()
    return sorted(releases, key=lambda r: SemVer(r.version), reverse=True)


def get_release(version: str, ports: CampaignPorts) -> FirmwareRelease:
    """The published release ``version``; a clear error when it was never published."""
    release = ports.releases.get_release(version)
    if release is None:
        raise ResourceNotFoundError(f"firmware {version} is not published (see `firmware list`)")
    return release
