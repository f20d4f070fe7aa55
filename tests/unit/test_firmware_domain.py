"""Semver ordering, manifest signing bytes and offline signature checks."""

from __future__ import annotations

import base64
from datetime import UTC, datetime

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from fleetota_core.domain.firmware import (
    FirmwareManifest,
    FirmwareRelease,
    SemVer,
    compare_versions,
    load_public_key,
    verify_release,
)
from fleetota_core.errors import ValidationError

KEY = ec.generate_private_key(ec.SECP256R1())


def sign(payload: bytes) -> str:
    return base64.b64encode(KEY.sign(payload, ec.ECDSA(hashes.SHA256()))).decode()


def manifest(**kw) -> FirmwareManifest:
    base = {
        "version": "2.0.0",
        "sha256": "a" * 64,
        "size_bytes": 1024,
        "models": ("Model 3",),
        "artifact_key": "firmware/2.0.0/app.bin",
        "created_at": datetime(2026, 11, 26, tzinfo=UTC),
        "created_by": "alice",
    }
    return FirmwareManifest(**{**base, **kw})


def test_semver_orders_numerically_and_prereleases_first():
    assert SemVer("1.10.0") > SemVer("1.9.9")
    assert SemVer("2.0.0-rc.1") < SemVer("2.0.0")
    assert SemVer("2.0.0-rc.2") > SemVer("2.0.0-rc.1")
    assert compare_versions("1.0.0", "1.0.0") == 0
    assert compare_versions("1.0.0", "1.0.1") == -1


def test_a_version_that_is_not_semver_is_rejected_with_the_rule():
    with pytest.raises(ValidationError, match="not semver"):
        SemVer("1.2")


def test_signed_bytes_are_canonical_whatever_the_field_order():
    a = manifest(models=("Model 3", "Model Y"))
    b = FirmwareManifest.model_validate(dict(reversed(list(a.model_dump().items()))))
    assert a.signed_bytes() == b.signed_bytes()
    assert b'"version":"2.0.0"' in a.signed_bytes()


def test_a_release_verifies_with_the_public_key_and_fails_once_tampered():
    der = KEY.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    public = load_public_key(der)
    m = manifest()
    release = FirmwareRelease(manifest=m, signature=sign(m.signed_bytes()), key_id="k")
    assert verify_release(public, release)
    forged = FirmwareRelease(manifest=manifest(sha256="b" * 64), signature=release.signature, key_id="k")
    assert not verify_release(public, forged)


def test_compatibility_and_minimum_source_version():
    m = manifest(hw_revs=("HW4",), min_from_version="1.5.0")
    assert m.is_compatible("Model 3", "HW4")
    assert not m.is_compatible("Model 3", "HW3")
    assert not m.is_compatible("Model Y", "HW4")
    assert m.accepts_source("1.5.0") and not m.accepts_source("1.4.9")
    assert manifest().is_compatible("Model 3", "anything")
