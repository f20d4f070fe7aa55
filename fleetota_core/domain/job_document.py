"""The signed per-vehicle job document (Uptane's "director" metadata) and the vehicle's checks on it."""

from __future__ import annotations

from datetime import datetime  # noqa: TC003 - pydantic needs it at runtime
from enum import StrEnum
from typing import TYPE_CHECKING

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from fleetota_core.domain.firmware import (
    FirmwareRelease,
    SemVer,
    canonical_json,
    verify_release,
    verify_signature,
)

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric import ec


class JobDocument(BaseModel):
    """What one vehicle is asked to do in one deployment attempt."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    campaign_id: str
    deployment_id: str
    vin: str
    attempt: int = Field(ge=1)
    release: FirmwareRelease
    download_url: str
    issued_at: AwareDatetime
    expires_at: AwareDatetime
    allow_downgrade: bool = False

    def signed_bytes(self) -> bytes:
        return canonical_json(self.model_dump(mode="json"))


class SignedJobDocument(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    document: JobDocument
    signature: str
    key_id: str


class RejectReason(StrEnum):
    """Error codes a vehicle reports with REJECTED; all permanent (retrying cannot change them)."""

    BAD_SIGNATURE = "BAD_SIGNATURE"
    BAD_MANIFEST_SIGNATURE = "BAD_MANIFEST_SIGNATURE"
    WRONG_VEHICLE = "WRONG_VEHICLE"
    EXPIRED = "JOB_EXPIRED"
    INCOMPATIBLE = "INCOMPATIBLE"
    SOURCE_TOO_OLD = "SOURCE_VERSION_TOO_OLD"
    DOWNGRADE = "DOWNGRADE_REFUSED"
    CHECKSUM = "CHECKSUM_MISMATCH"


class JobCheckFailed(Exception):
    """The vehicle refuses the job; ``code`` goes into the REJECTED report, ``detail`` explains."""

    def __init__(self, code: RejectReason, detail: str) -> None:
        super().__init__(f"{code}: {detail}")
        self.code = code
        self.detail = detail


def check_job(
    signed: SignedJobDocument,
    public_key: ec.EllipticCurvePublicKey,
    *,
    vin: str,
    model: str,
    hw_rev: str,
    current_version: str,
    now: datetime,
) -> JobDocument:
    """Every check a vehicle makes before downloading; raises :class:`JobCheckFailed` on the first miss.

    Order matters: nothing in an unauthenticated document is trusted, so signatures come first.
    """
    doc = signed.document
    if not verify_signature(public_key, doc.signed_bytes(), signed.signature):
        raise JobCheckFailed(RejectReason.BAD_SIGNATURE, "job document signature does not verify")
    if not verify_release(public_key, doc.release):
        raise JobCheckFailed(RejectReason.BAD_MANIFEST_SIGNATURE, "manifest signature does not verify")
    if doc.vin != vin:
        raise JobCheckFailed(RejectReason.WRONG_VEHICLE, f"job is for {doc.vin}, not {vin}")
    if now >= doc.expires_at:
        raise JobCheckFailed(RejectReason.EXPIRED, f"job expired at {doc.expires_at.isoformat()}")
    manifest = doc.release.manifest
    if not manifest.is_compatible(model, hw_rev):
        raise JobCheckFailed(
            RejectReason.INCOMPATIBLE,
            f"{manifest.version} is not for {model} {hw_rev} (models {', '.join(manifest.models)})",
        )
    target, current = SemVer(manifest.version), SemVer(current_version)
    if target < current and not doc.allow_downgrade:
        raise JobCheckFailed(
            RejectReason.DOWNGRADE, f"{manifest.version} is older than installed {current_version}"
        )
    if target >= current and not manifest.accepts_source(current_version):
        raise JobCheckFailed(
            RejectReason.SOURCE_TOO_OLD,
            f"{manifest.version} needs at least {manifest.min_from_version}, vehicle has {current_version}",
        )
    return doc
