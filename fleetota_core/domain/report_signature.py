"""The signature a vehicle puts on each OTA status report, and its check against the registry's key.

Canonical encoding (version 1), documented in docs/telemetry.md: the UTF-8 bytes of the compact JSON
array (no spaces, ASCII only, ``json.dumps(..., separators=(",", ":"), ensure_ascii=True)``) of

    ["fleetota-ota-report-v1", vin, campaign_id, deployment_id, attempt, status,
     firmware_version, target_version, error_code or "", ts_ms]

``firmware_version`` is the record's (what the vehicle runs), ``ts_ms`` the record's ``ts`` in whole
milliseconds since the epoch. A report that carries ``delivery`` (how the image was obtained) is
signed as version 2: the context ``"fleetota-ota-report-v2"`` and three more elements at the end,
``delivery.artifact``, ``delivery.downloaded_bytes`` and ``delivery.fallback or ""``. When the
report carries download byte counts (``bytes_wifi``, ``bytes_cellular``), the two are then appended
as integers (0 for one that is absent), so a vehicle's count of its cellular data is as authentic as
its status. The signature
is ECDSA P-256 with SHA-256 over those bytes, DER-encoded and then base64 (standard alphabet,
padded), in ``ota.signature``.
"""

from __future__ import annotations

import base64
import json
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from fleetota_core.errors import InputError

if TYPE_CHECKING:
    from datetime import datetime

SIGNATURE_CONTEXT = "fleetota-ota-report-v1"
SIGNATURE_CONTEXT_DELIVERY = "fleetota-ota-report-v2"
MAX_SIGNATURE_CHARS = 128  # a DER P-256 signature is at most 72 bytes: 96 base64 characters
_ECDSA = ec.ECDSA(hashes.SHA256())


def epoch_ms(ts: datetime) -> int:
    return round(ts.timestamp() * 1000)


def canonical_report(
    vin: str,
    ts: datetime,
    firmware_version: str,
    campaign_id: str,
    deployment_id: str,
    attempt: int,
    status: str,
    target_version: str,
    error_code: str | None,
    delivery: tuple[str, int, str | None] | None = None,
    bytes_wifi: int | None = None,
    bytes_cellular: int | None = None,
) -> bytes:
    """The exact bytes a vehicle signs for one OTA report (see the module docstring).

    ``delivery`` is (artifact, downloaded bytes, fallback reason) when the report carries one.
    """
    fields: list[object] = [
        SIGNATURE_CONTEXT if delivery is None else SIGNATURE_CONTEXT_DELIVERY,
        vin,
        campaign_id,
        deployment_id,
        attempt,
        status,
        firmware_version,
        target_version,
        error_code or "",
        epoch_ms(ts),
    ]
    if delivery is not None:
        artifact, downloaded, fallback = delivery
        fields += [artifact, downloaded, fallback or ""]
    if bytes_wifi is not None or bytes_cellular is not None:
        fields += [bytes_wifi or 0, bytes_cellular or 0]
    return json.dumps(fields, separators=(",", ":"), ensure_ascii=True).encode()


def report_payload(record: Any) -> bytes:
    """The canonical bytes of ``record.ota`` (a ``TelemetryRecord`` or the hot path's struct)."""
    ota = record.ota
    delivery = getattr(ota, "delivery", None)
    return canonical_report(
        record.vin,
        record.ts,
        record.firmware_version,
        ota.campaign_id,
        ota.deployment_id,
        ota.attempt,
        str(ota.status.value if hasattr(ota.status, "value") else ota.status),
        ota.target_version,
        ota.error_code,
        None if delivery is None else (delivery.artifact, delivery.downloaded_bytes, delivery.fallback),
        getattr(ota, "bytes_wifi", None),
        getattr(ota, "bytes_cellular", None),
    )


def sign_payload(private_key: ec.EllipticCurvePrivateKey, payload: bytes) -> str:
    return base64.b64encode(private_key.sign(payload, _ECDSA)).decode()


@lru_cache(maxsize=65_536)
def public_key_from_pem(pem: str) -> ec.EllipticCurvePublicKey:
    """A registry public key (PEM SubjectPublicKeyInfo), parsed once per process."""
    key = serialization.load_pem_public_key(pem.encode())
    if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ec.SECP256R1):
        raise InputError("the public key is not an ECDSA P-256 key")
    return key


def verify_report(public_key_pem: str, payload: bytes, signature_b64: str | None) -> str | None:
    """None when ``signature_b64`` is this key's signature of ``payload``, else why not."""
    if not signature_b64:
        return "unsigned"
    try:
        signature = base64.b64decode(signature_b64, validate=True)
        public_key_from_pem(public_key_pem).verify(signature, payload, _ECDSA)
    except (InvalidSignature, ValueError, InputError):
        return "bad_signature"
    return None


def normalise_public_key(text: str) -> str:
    """A public key given as PEM, or as an uncompressed P-256 point in hex (``04`` + x + y), as PEM.

    Raises ``InputError`` naming what is wrong.
    """
    text = text.strip()
    try:
        if text.startswith("-----BEGIN"):
            key = serialization.load_pem_public_key(text.encode())
        else:
            point = bytes.fromhex(text.removeprefix("0x"))
            if len(point) != 65 or point[0] != 4:
                raise InputError("public key: an uncompressed P-256 point is 65 bytes starting 04")
            key = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), point)
    except ValueError as exc:
        raise InputError(f"public key: not a PEM key or a P-256 point ({exc})") from exc
    if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ec.SECP256R1):
        raise InputError("public key: not an ECDSA P-256 key")
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()


def public_key_pem(private_key: ec.EllipticCurvePrivateKey) -> str:
    return (
        private_key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
