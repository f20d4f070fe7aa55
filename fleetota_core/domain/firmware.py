"""Firmware releases: the signed manifest, semver ordering and offline signature checks."""

from __future__ import annotations

import base64
import json
import re
from datetime import datetime  # noqa: TC003 - pydantic needs it at runtime
from functools import total_ordering
from typing import Any, Literal

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from fleetota_core.domain.telemetry import SEMVER_PATTERN
from fleetota_core.errors import ValidationError

SIGNING_ALGORITHM = "ECDSA_SHA_256"
# KMS signs RAW messages of at most 4096 bytes.
MAX_SIGNED_BYTES = 4096
MAX_NOTES_CHARS = 2000
DELTA_CONTEXT = "fleetota-delta-v1"  # in a delta's signed bytes: its signature is never a manifest's
DELTA_ALGORITHM = "zstd-patch-from"
MAX_DELTAS = 8  # per release; each rides in the release, the campaign item and the preview
MAX_WINDOW_LOG = 31  # zstd's largest window (2 GiB); a vehicle refuses a delta that asks for more
_SHA256 = r"^[0-9a-f]{64}$"
_SEMVER = re.compile(SEMVER_PATTERN)


@total_ordering
class SemVer:
    """A semantic version; pre-releases sort before their release (1.2.0-rc1 < 1.2.0)."""

    def __init__(self, text: str) -> None:
        if not isinstance(text, str) or not _SEMVER.match(text):
            raise ValidationError(f"version {text!r} is not semver (MAJOR.MINOR.PATCH[-PRERELEASE])")
        core, _, pre = text.partition("-")
        self.text = text
        self.core = tuple(int(part) for part in core.split("."))
        self.pre = tuple(int(p) if p.isdigit() else p for p in pre.split(".")) if pre else ()

    def _key(self) -> tuple[Any, ...]:
        # Numeric identifiers sort before alphanumeric ones (semver rule 11).
        pre = tuple((0, p, "") if isinstance(p, int) else (1, 0, p) for p in self.pre)
        return (self.core, 1 if not self.pre else 0, pre)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SemVer) and self._key() == other._key()

    def __lt__(self, other: SemVer) -> bool:
        return self._key() < other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        return f"SemVer({self.text!r})"


def compare_versions(a: str, b: str) -> int:
    """-1, 0 or 1 as ``a`` is older than, equal to or newer than ``b``."""
    va, vb = SemVer(a), SemVer(b)
    return (va > vb) - (va < vb)


def canonical_json(payload: dict[str, Any]) -> bytes:
    """The exact bytes that get signed: sorted keys, no whitespace, UTF-8."""
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


class FirmwareManifest(BaseModel):
    """What a vehicle needs to decide whether and how to install an artifact; this is what is signed."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    version: str = Field(pattern=SEMVER_PATTERN, max_length=64)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    size_bytes: int = Field(gt=0)
    models: tuple[str, ...] = Field(min_length=1)
    hw_revs: tuple[str, ...] = ()  # empty: every hardware revision of the models
    min_from_version: str | None = Field(default=None, pattern=SEMVER_PATTERN)
    artifact_key: str
    notes: str = Field(default="", max_length=MAX_NOTES_CHARS)
    created_at: datetime
    created_by: str

    @model_validator(mode="after")
    def _signable(self) -> FirmwareManifest:
        size = len(self.signed_bytes())
        if size > MAX_SIGNED_BYTES:
            raise ValueError(
                f"the manifest is {size} bytes as signed and KMS signs at most {MAX_SIGNED_BYTES}; "
                "shorten the notes, the model or hardware lists, or the file name"
            )
        return self

    def signed_bytes(self) -> bytes:
        return canonical_json(self.model_dump(mode="json"))

    def is_compatible(self, model: str, hw_rev: str) -> bool:
        return model in self.models and (not self.hw_revs or hw_rev in self.hw_revs)

    def accepts_source(self, current_version: str) -> bool:
        """Whether a vehicle on ``current_version`` may install this (the minimum source version)."""
        return self.min_from_version is None or SemVer(current_version) >= SemVer(self.min_from_version)


class DeltaManifest(BaseModel):
    """What is signed for one delta: the patch, the source it applies to and the image it makes."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    target_version: str = Field(pattern=SEMVER_PATTERN, max_length=64)
    target_sha256: str = Field(pattern=_SHA256)
    target_size_bytes: int = Field(gt=0)
    source_version: str = Field(pattern=SEMVER_PATTERN, max_length=64)
    source_sha256: str = Field(pattern=_SHA256)
    source_size_bytes: int = Field(gt=0)
    algorithm: Literal["zstd-patch-from"] = "zstd-patch-from"
    window_log: int = Field(ge=10, le=MAX_WINDOW_LOG)  # the decoder window the patch needs
    sha256: str = Field(pattern=_SHA256)
    size_bytes: int = Field(gt=0)
    artifact_key: str = Field(min_length=1, max_length=512)
    created_at: datetime
    created_by: str = Field(max_length=128)

    def signed_bytes(self) -> bytes:
        return canonical_json({"type": DELTA_CONTEXT, **self.model_dump(mode="json")})

    def fits(self, target: FirmwareManifest) -> bool:
        """Whether this delta makes exactly ``target``'s signed image."""
        return (self.target_version, self.target_sha256, self.target_size_bytes) == (
            target.version,
            target.sha256,
            target.size_bytes,
        )


class SignedDelta(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    manifest: DeltaManifest
    signature: str
    key_id: str

    @property
    def source_version(self) -> str:
        return self.manifest.source_version

    @field_validator("signature")
    @classmethod
    def _base64(cls, value: str) -> str:
        base64.b64decode(value, validate=True)
        return value


class FirmwareRelease(BaseModel):
    """A manifest plus its KMS signature (base64 DER) and the key that made it, and its deltas.

    The deltas are not in the signed manifest: each carries its own image-key signature, bound to
    this manifest's version and sha256 (see ``fleetota_core.domain.delta``).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    manifest: FirmwareManifest
    signature: str
    key_id: str
    deltas: tuple[SignedDelta, ...] = Field(default=(), max_length=MAX_DELTAS)

    def without_deltas(self) -> FirmwareRelease:
        return self.model_copy(update={"deltas": ()}) if self.deltas else self

    @property
    def version(self) -> str:
        return self.manifest.version

    @field_validator("signature")
    @classmethod
    def _base64(cls, value: str) -> str:
        base64.b64decode(value, validate=True)
        return value


def load_public_key(der: bytes) -> ec.EllipticCurvePublicKey:
    """The signing key's public half as KMS GetPublicKey returns it (DER SubjectPublicKeyInfo)."""
    key = serialization.load_der_public_key(der)
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise ValidationError("the signing key is not an elliptic-curve key")
    return key


def verify_signature(public_key: ec.EllipticCurvePublicKey, payload: bytes, signature_b64: str) -> bool:
    """Whether ``signature_b64`` is a valid ECDSA_SHA_256 signature of ``payload``; never raises."""
    try:
        public_key.verify(base64.b64decode(signature_b64), payload, ec.ECDSA(hashes.SHA256()))
    except (InvalidSignature, ValueError):
        return False
    return True


def verify_release(public_key: ec.EllipticCurvePublicKey, release: FirmwareRelease) -> bool:
    return verify_signature(public_key, release.manifest.signed_bytes(), release.signature)
