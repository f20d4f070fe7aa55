"""The signed per-vehicle job document (Uptane's "director" metadata) and the vehicle's checks on it.

Two keys, two roles (Uptane's split): the image key signs release manifests, the director key signs
job documents. A vehicle trusts each key for its own role only. A job document is bound to one
vehicle, campaign, deployment, attempt and target version, lives at most ``MAX_JOB_LIFETIME`` and
may not be issued more than ``MAX_CLOCK_SKEW`` ahead of the vehicle's clock. The vehicle keeps an
:class:`OtaHistory` (jobs it has finished, the newest ``issued_at`` it has acted on, the highest
version it has installed) and refuses a replay of anything older (docs/campaigns.md, "Job documents").
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from fleetota_core.domain.bounds import MAX_JOB_TTL_S
from fleetota_core.domain.delta import DeltaOffer  # noqa: TC001 - pydantic needs it at runtime
from fleetota_core.domain.firmware import (
    FirmwareRelease,
    SemVer,
    canonical_json,
    verify_release,
    verify_signature,
)

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric import ec

# A vehicle's clock may run this far behind the director's; an issued_at further ahead is refused.
MAX_CLOCK_SKEW = timedelta(minutes=5)
# The longest a job document is valid (issued_at to expires_at): the longest job_ttl_s.
MAX_JOB_LIFETIME = timedelta(seconds=MAX_JOB_TTL_S)
# Finished job ids a vehicle remembers; older ones are refused by the issued_at watermark anyway.
MAX_REMEMBERED_JOBS = 64


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
    # A patch from the vehicle's version to ``release``'s image, when the release has one; the full
    # image (``download_url``) is always there to fall back to.
    delta: DeltaOffer | None = None
    # Two-phase delivery (domain/delivery.py): ``immediate`` installs once verified; ``window`` stages
    # the image and installs on a signed install permit; ``consent`` also installs on the driver's
    # consent given within ``consent_deadline_s`` of staging.
    install_policy: Literal["immediate", "window", "consent"] = "immediate"
    consent_deadline_s: int | None = Field(default=None, ge=60, le=MAX_JOB_TTL_S)
    # False: download over Wi-Fi only, pausing while on cellular (the campaign's network policy).
    cellular_allowed: bool = True

    def signed_bytes(self) -> bytes:
        payload = self.model_dump(mode="json")
        # Without a delta, the bytes are exactly what a job document was before deltas existed.
        if payload.get("delta") is None:
            payload.pop("delta", None)
        if not payload["release"].get("deltas"):
            payload["release"].pop("deltas", None)
        return canonical_json(payload)

    @property
    def job_id(self) -> str:
        return job_id(self.deployment_id, self.attempt)


def job_id(deployment_id: str, attempt: int) -> str:
    """The identity of one attempt at one deployment, as a vehicle remembers it."""
    return f"{deployment_id}#{attempt}"


class SignedJobDocument(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    document: JobDocument
    signature: str
    key_id: str


class RejectReason(StrEnum):
    """Error codes a vehicle reports with REJECTED; all permanent (retrying cannot change them)."""

    BAD_SIGNATURE = "BAD_SIGNATURE"
    BAD_MANIFEST_SIGNATURE = "BAD_MANIFEST_SIGNATURE"
    WRONG_KEY_ROLE = "WRONG_KEY_ROLE"
    WRONG_VEHICLE = "WRONG_VEHICLE"
    REPLAYED = "REPLAYED"
    MISMATCH = "JOB_MISMATCH"
    ISSUED_IN_FUTURE = "ISSUED_IN_FUTURE"
    LIFETIME = "JOB_LIFETIME_INVALID"
    EXPIRED = "JOB_EXPIRED"
    INCOMPATIBLE = "INCOMPATIBLE"
    SOURCE_TOO_OLD = "SOURCE_VERSION_TOO_OLD"
    DOWNGRADE = "DOWNGRADE_REFUSED"
    CHECKSUM = "CHECKSUM_MISMATCH"
    TOO_LARGE = "ARTIFACT_TOO_LARGE"


class JobCheckFailed(Exception):
    """The vehicle refuses the job; ``code`` goes into the REJECTED report, ``detail`` explains."""

    def __init__(self, code: RejectReason, detail: str) -> None:
        super().__init__(f"{code}: {detail}")
        self.code = code
        self.detail = detail


@dataclass(frozen=True)
class TrustedKeys:
    """The public keys a vehicle pins, one per role."""

    image: ec.EllipticCurvePublicKey  # release manifests
    director: ec.EllipticCurvePublicKey  # job documents


@dataclass(frozen=True)
class JobNotice:
    """What the notification asked this vehicle to do; the job document must say the same."""

    vin: str
    campaign_id: str
    deployment_id: str
    attempt: int
    target_version: str

    @classmethod
    def from_message(cls, message: dict[str, Any]) -> JobNotice:
        """The notice in a job notification; ``ValueError`` when a field is missing or malformed."""
        try:
            return cls(
                vin=str(message["vin"]),
                campaign_id=str(message["campaign_id"]),
                deployment_id=str(message["deployment_id"]),
                attempt=int(message["attempt"]),
                target_version=str(message["target_version"]),
            )
        except (KeyError, TypeError) as exc:
            raise ValueError(f"job notice lacks {exc}") from exc

    @property
    def job_id(self) -> str:
        return job_id(self.deployment_id, self.attempt)


@dataclass(frozen=True)
class OtaHistory:
    """What a vehicle remembers across restarts to refuse replays (persisted by the vehicle)."""

    newest_issued_at: datetime | None = None  # of the newest job document it acted on
    highest_installed: str | None = None
    finished: tuple[str, ...] = field(default_factory=tuple)  # job ids, newest last

    def accepted(self, doc: JobDocument) -> OtaHistory:
        """After starting ``doc``: nothing issued before it is acted on any more."""
        newest = self.newest_issued_at
        return replace(self, newest_issued_at=doc.issued_at if newest is None else max(newest, doc.issued_at))

    def finished_job(self, doc: JobDocument, installed: bool) -> OtaHistory:
        """After ``doc``'s attempt ended (installed or not): it is never acted on again."""
        finished = (*[j for j in self.finished if j != doc.job_id], doc.job_id)[-MAX_REMEMBERED_JOBS:]
        highest = self.highest_installed
        if installed and (highest is None or SemVer(doc.release.version) > SemVer(highest)):
            highest = doc.release.version
        return replace(self.accepted(doc), finished=finished, highest_installed=highest)

    def to_json(self) -> dict[str, Any]:
        return {
            "newest_issued_at": self.newest_issued_at.isoformat() if self.newest_issued_at else None,
            "highest_installed": self.highest_installed,
            "finished": list(self.finished),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> OtaHistory:
        newest = data.get("newest_issued_at")
        return cls(
            newest_issued_at=datetime.fromisoformat(newest) if newest else None,
            highest_installed=data.get("highest_installed"),
            finished=tuple(data.get("finished", ()))[-MAX_REMEMBERED_JOBS:],
        )


def _check_signatures(signed: SignedJobDocument, keys: TrustedKeys) -> None:
    doc = signed.document
    if not verify_signature(keys.director, doc.signed_bytes(), signed.signature):
        if verify_signature(keys.image, doc.signed_bytes(), signed.signature):
            raise JobCheckFailed(RejectReason.WRONG_KEY_ROLE, "job document signed by the image key")
        raise JobCheckFailed(RejectReason.BAD_SIGNATURE, "job document signature does not verify")
    if not verify_release(keys.image, doc.release):
        if verify_release(keys.director, doc.release):
            raise JobCheckFailed(RejectReason.WRONG_KEY_ROLE, "release manifest signed by the director key")
        raise JobCheckFailed(RejectReason.BAD_MANIFEST_SIGNATURE, "manifest signature does not verify")


def _check_binding(doc: JobDocument, notice: JobNotice, history: OtaHistory) -> None:
    if doc.job_id in history.finished:
        raise JobCheckFailed(RejectReason.REPLAYED, f"job {doc.job_id} was already used")
    newest = history.newest_issued_at
    if newest is not None and doc.issued_at < newest:
        raise JobCheckFailed(
            RejectReason.REPLAYED,
            f"job issued {doc.issued_at.isoformat()}, before the newest used ({newest.isoformat()})",
        )
    expected = {
        "campaign": (notice.campaign_id, doc.campaign_id),
        "deployment": (notice.deployment_id, doc.deployment_id),
        "attempt": (notice.attempt, doc.attempt),
        "target version": (notice.target_version, doc.release.version),
    }
    wrong = [f"{name} {got} (notice: {want})" for name, (want, got) in expected.items() if want != got]
    if wrong:
        raise JobCheckFailed(RejectReason.MISMATCH, "document names " + ", ".join(wrong))


def _check_time(doc: JobDocument, now: datetime) -> None:
    if doc.issued_at > now + MAX_CLOCK_SKEW:
        raise JobCheckFailed(
            RejectReason.ISSUED_IN_FUTURE,
            f"issued {doc.issued_at.isoformat()}, more than {MAX_CLOCK_SKEW} after {now.isoformat()}",
        )
    lifetime = doc.expires_at - doc.issued_at
    if not timedelta(0) < lifetime <= MAX_JOB_LIFETIME:
        raise JobCheckFailed(RejectReason.LIFETIME, f"valid for {lifetime}, allowed up to {MAX_JOB_LIFETIME}")
    if now >= doc.expires_at:
        raise JobCheckFailed(RejectReason.EXPIRED, f"job expired at {doc.expires_at.isoformat()}")


def check_job(
    signed: SignedJobDocument,
    keys: TrustedKeys,
    notice: JobNotice,
    *,
    model: str,
    hw_rev: str,
    current_version: str,
    history: OtaHistory,
    now: datetime,
) -> JobDocument:
    """Every check a vehicle makes before downloading; raises :class:`JobCheckFailed` on the first miss.

    Order matters: nothing in an unauthenticated document is trusted, so signatures come first,
    then whether this is the job the vehicle was notified of and has not used, then time, then fit.
    """
    _check_signatures(signed, keys)
    doc = signed.document
    if doc.vin != notice.vin:
        raise JobCheckFailed(RejectReason.WRONG_VEHICLE, f"job is for {doc.vin}, not {notice.vin}")
    _check_binding(doc, notice, history)
    _check_time(doc, now)
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
