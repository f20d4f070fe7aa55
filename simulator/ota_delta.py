"""The vehicle's side of delta updates: whether to take an offered delta, and rebuilding the image.

The vehicle trusts nothing about a delta until it checks out: the delta's signature (image key), that
it makes exactly the release's signed image, that it applies to the image this vehicle runs. After
the download: the patch's sha256, that it decodes against the installed image, and that the result is
the release's signed full image. Any miss is a :class:`DeltaFallback`: the vehicle downloads the full
image instead and reports the reason.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

from fleetota_core.domain.delta import DeltaFallback, OtaArtifact, delta_problem
from fleetota_core.domain.telemetry import OtaDelivery
from fleetota_core.services.delta.patch import PatchError, apply_patch

if TYPE_CHECKING:
    from fleetota_core.domain.job_document import JobDocument, TrustedKeys


def choose_artifact(
    doc: JobDocument, keys: TrustedKeys, installed_version: str, installed_image: bytes
) -> tuple[OtaArtifact, DeltaFallback | None]:
    """The artifact to download first, and why not the offered delta (None if none or if taken)."""
    if doc.delta is None:
        return OtaArtifact.FULL, None
    problem = delta_problem(
        doc.delta,
        keys.image,
        doc.release.manifest,
        installed_version,
        hashlib.sha256(installed_image).hexdigest(),
    )
    return (OtaArtifact.FULL, problem) if problem is not None else (OtaArtifact.DELTA, None)


def rebuild(doc: JobDocument, patch: bytes, installed_image: bytes) -> bytes | DeltaFallback:
    """The release's image made from ``patch`` and the installed image, or why it could not be."""
    if doc.delta is None:
        raise ValueError("the job offers no delta")
    delta = doc.delta.delta.manifest
    target = doc.release.manifest
    if len(patch) != delta.size_bytes or hashlib.sha256(patch).hexdigest() != delta.sha256:
        return DeltaFallback.CHECKSUM
    try:
        image = apply_patch(installed_image, patch, delta.window_log, target.size_bytes)
    except PatchError:
        return DeltaFallback.APPLY_FAILED
    if len(image) != target.size_bytes or hashlib.sha256(image).hexdigest() != target.sha256:
        return DeltaFallback.RESULT_MISMATCH
    return image


def delivery(artifact: OtaArtifact, downloaded: int, fallback: DeltaFallback | None) -> OtaDelivery:
    return OtaDelivery(
        artifact=artifact.value,
        downloaded_bytes=downloaded,
        fallback=None if fallback is None else fallback.value,
    )
