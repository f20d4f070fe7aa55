"""Delta artifacts: a signed patch from one source version's image to a release's full image.

A release may carry deltas from the source versions most of its fleet runs. Each delta has its own
manifest, signed by the image key like the release manifest, that binds the patch (sha256, size,
object key) to the exact source image (version, sha256) and the exact target (version, sha256,
size). The update manager only chooses: a vehicle whose version has a delta gets the delta *and* the
full image in its job document. The vehicle uses the delta only if every check passes, and checks
the image it rebuilt against the release's signed sha256; on any miss it downloads the full image and
reports why (:class:`DeltaFallback`), so nothing ever installs on the strength of a delta alone.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict

from fleetota_core.domain.firmware import (
    MAX_WINDOW_LOG,
    SemVer,
    SignedDelta,
    verify_signature,
)
from fleetota_core.errors import ValidationError

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

    from cryptography.hazmat.primitives.asymmetric import ec

    from fleetota_core.domain.firmware import FirmwareManifest


@dataclass(frozen=True)
class DeltaBuild:
    """A patch made for publishing: from ``source`` (a published release's manifest) to a new image."""

    source: FirmwareManifest
    data: bytes
    window_log: int


class DeltaOffer(BaseModel):
    """The delta in a job document: the signed delta and where the vehicle downloads it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    delta: SignedDelta
    download_url: str


def verify_delta(public_key: ec.EllipticCurvePublicKey, delta: SignedDelta) -> bool:
    return verify_signature(public_key, delta.manifest.signed_bytes(), delta.signature)


# Choosing sources and artifacts (publisher and update manager) ----------------------------------


def delta_sources(
    fleet_versions: Iterable[str | None], target: str, count: int, min_from_version: str | None = None
) -> list[tuple[str, int]]:
    """The ``count`` source versions most of the fleet runs, with their vehicle counts, most first.

    Only versions older than ``target`` (an upgrade) and not below ``min_from_version`` qualify;
    ties go to the newer version (its delta is the smaller one).
    """
    if count < 0:
        raise ValueError("the number of delta sources cannot be negative")
    newest = SemVer(target)
    floor = SemVer(min_from_version) if min_from_version else None
    counts: Counter[str] = Counter()
    for version in fleet_versions:
        if not version:
            continue
        try:
            semver = SemVer(version)
        except ValidationError:
            continue
        if semver < newest and (floor is None or semver >= floor):
            counts[version] += 1
    ranked = sorted(counts.items(), key=lambda item: (-item[1], _descending(item[0])))
    return ranked[:count]


def _descending(version: str) -> tuple[int, ...]:
    return tuple(-part for part in SemVer(version).core)


def delta_for(deltas: Iterable[SignedDelta], from_version: str | None) -> SignedDelta | None:
    """The delta a vehicle on ``from_version`` gets, if the release has one from that version."""
    if not from_version:
        return None
    return next((d for d in deltas if d.manifest.source_version == from_version), None)


@dataclass(frozen=True)
class DeliveryProjection:
    """What a campaign's downloads cost with the release's deltas, against full images for all."""

    vehicles: int
    delta_vehicles: int
    full_bytes: int  # every vehicle downloads the full image
    planned_bytes: int  # vehicles with a delta download it instead

    @property
    def saved_bytes(self) -> int:
        return self.full_bytes - self.planned_bytes

    @property
    def saved_pct(self) -> float:
        return 0.0 if self.full_bytes == 0 else 100.0 * self.saved_bytes / self.full_bytes


def project_delivery(
    full_size: int, deltas: Iterable[SignedDelta], from_versions: Iterable[str | None]
) -> DeliveryProjection:
    """The bytes a campaign downloads if every targeted vehicle (by its version) takes its artifact."""
    offered = tuple(deltas)
    vehicles = with_delta = planned = 0
    for version in from_versions:
        vehicles += 1
        delta = delta_for(offered, version)
        with_delta += delta is not None
        planned += full_size if delta is None else delta.manifest.size_bytes
    return DeliveryProjection(vehicles, with_delta, vehicles * full_size, planned)


# The vehicle's checks and what it reports -------------------------------------------------------


class DeltaFallback(StrEnum):
    """Why a vehicle took the full image although it was offered a delta (counted per campaign)."""

    BAD_SIGNATURE = "DELTA_BAD_SIGNATURE"
    WRONG_TARGET = "DELTA_WRONG_TARGET"  # the signed delta makes some other image
    SOURCE_MISMATCH = "DELTA_SOURCE_MISMATCH"  # the vehicle does not run the delta's source image
    TOO_LARGE = "DELTA_TOO_LARGE"  # bigger than the full image, or asks for too large a window
    DOWNLOAD_FAILED = "DELTA_DOWNLOAD_FAILED"
    CHECKSUM = "DELTA_CHECKSUM_MISMATCH"  # the downloaded patch is not the signed one
    APPLY_FAILED = "DELTA_APPLY_FAILED"  # the patch did not decode against the source image
    RESULT_MISMATCH = "DELTA_RESULT_MISMATCH"  # the rebuilt image is not the signed full image
    OTHER = "DELTA_OTHER"  # a reason this version does not know (counted, never trusted as a name)


def delta_problem(
    offer: DeltaOffer,
    image_key: ec.EllipticCurvePublicKey,
    target: FirmwareManifest,
    installed_version: str,
    installed_sha256: str,
    max_window_log: int = MAX_WINDOW_LOG,
) -> DeltaFallback | None:
    """Why the vehicle must not use ``offer`` before downloading it, or None when it may."""
    manifest = offer.delta.manifest
    if not verify_delta(image_key, offer.delta):
        return DeltaFallback.BAD_SIGNATURE
    if not manifest.fits(target):
        return DeltaFallback.WRONG_TARGET
    if (manifest.source_version, manifest.source_sha256) != (installed_version, installed_sha256):
        return DeltaFallback.SOURCE_MISMATCH
    if manifest.size_bytes >= target.size_bytes or manifest.window_log > max_window_log:
        return DeltaFallback.TOO_LARGE
    return None


class OtaArtifact(StrEnum):
    DELTA = "delta"
    FULL = "full"


@dataclass(frozen=True)
class DeliveryTally:
    """A campaign's finished attempts by artifact, with the bytes they downloaded (counters)."""

    from_delta: int = 0
    from_full: int = 0
    fallbacks: dict[str, int] = field(default_factory=dict)
    downloaded_bytes: int = 0
    full_image_bytes: int = 0  # what the same attempts would have downloaded as full images

    @property
    def saved_bytes(self) -> int:
        return self.full_image_bytes - self.downloaded_bytes

    @property
    def fallback_count(self) -> int:
        return sum(self.fallbacks.values())


FALLBACK_PREFIX = "fallback_"
_FALLBACK_NAMES = frozenset(reason.value for reason in DeltaFallback)
DELIVERY_COUNTERS = ("delta", "full", "bytes_downloaded", "bytes_full")


def delivery_counts(
    artifact: OtaArtifact, downloaded_bytes: int, fallback: str | None, full_size: int
) -> dict[str, int]:
    """The delivery counters one finished attempt adds (names from a closed set, never the vehicle's).

    A vehicle downloads at most a delta and the full image (each smaller than or equal to the full
    image), so a claim above twice the full size is capped there rather than trusted.
    """
    downloaded = max(0, min(downloaded_bytes, 2 * full_size))
    counts = {artifact.value: 1, "bytes_downloaded": downloaded, "bytes_full": full_size}
    if fallback:
        known = fallback if fallback in _FALLBACK_NAMES else DeltaFallback.OTHER.value
        counts[f"{FALLBACK_PREFIX}{known}"] = 1
    return counts


def delivery_tally(counters: Mapping[str, int]) -> DeliveryTally:
    """The tally from a campaign's delivery counters (``delivery_counts`` names)."""
    return DeliveryTally(
        from_delta=counters.get("delta", 0),
        from_full=counters.get("full", 0),
        fallbacks={
            k.removeprefix(FALLBACK_PREFIX): v
            for k, v in counters.items()
            if k.startswith(FALLBACK_PREFIX) and v
        },
        downloaded_bytes=counters.get("bytes_downloaded", 0),
        full_image_bytes=counters.get("bytes_full", 0),
    )
