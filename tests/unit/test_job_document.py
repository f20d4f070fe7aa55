"""The vehicle's checks on a signed job document, signature first."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from fleetota_core.domain.firmware import FirmwareManifest, FirmwareRelease
from fleetota_core.domain.job_document import (
    JobCheckFailed,
    JobDocument,
    RejectReason,
    SignedJobDocument,
    check_job,
)

KEY = ec.generate_private_key(ec.SECP256R1())
OTHER_KEY = ec.generate_private_key(ec.SECP256R1())
NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
VIN = "5YJ3E1EA0PF000001"


def sign(payload: bytes, key=KEY) -> str:
    return base64.b64encode(key.sign(payload, ec.ECDSA(hashes.SHA256()))).decode()


def release(version="2.0.0", key=KEY, **kw) -> FirmwareRelease:
    m = FirmwareManifest(
        version=version,
        sha256="a" * 64,
        size_bytes=10,
        models=("Model 3",),
        hw_revs=("HW4",),
        artifact_key=f"firmware/{version}/a.bin",
        created_at=NOW,
        created_by="alice",
        **kw,
    )
    return FirmwareRelease(manifest=m, signature=sign(m.signed_bytes(), key), key_id="k")


def signed_job(rel=None, key=KEY, **kw) -> SignedJobDocument:
    base = {
        "campaign_id": "c1",
        "deployment_id": f"c1.{VIN}",
        "vin": VIN,
        "attempt": 1,
        "release": rel or release(),
        "download_url": "http://x/a.bin",
        "issued_at": NOW,
        "expires_at": NOW + timedelta(hours=1),
    }
    doc = JobDocument(**{**base, **kw})
    return SignedJobDocument(document=doc, signature=sign(doc.signed_bytes(), key), key_id="k")


def check(job: SignedJobDocument, **kw):
    args = {"vin": VIN, "model": "Model 3", "hw_rev": "HW4", "current_version": "1.0.0", "now": NOW}
    return check_job(job, KEY.public_key(), **{**args, **kw})


def rejection(job: SignedJobDocument, **kw) -> RejectReason:
    with pytest.raises(JobCheckFailed) as exc:
        check(job, **kw)
    return exc.value.code


def test_a_valid_job_passes_every_check():
    assert check(signed_job()).attempt == 1


def test_a_job_signed_by_another_key_is_rejected():
    assert rejection(signed_job(key=OTHER_KEY)) is RejectReason.BAD_SIGNATURE


def test_a_job_whose_document_was_edited_after_signing_is_rejected():
    job = signed_job()
    edited = job.document.model_copy(update={"allow_downgrade": True})
    assert rejection(SignedJobDocument(document=edited, signature=job.signature, key_id="k")) is (
        RejectReason.BAD_SIGNATURE
    )


def test_a_forged_manifest_inside_a_validly_signed_document_is_rejected():
    # The director signed it, but the release itself was never signed by the release key.
    assert rejection(signed_job(rel=release(key=OTHER_KEY))) is RejectReason.BAD_MANIFEST_SIGNATURE


def test_expired_wrong_vehicle_and_incompatible_jobs_are_rejected():
    assert rejection(signed_job(), now=NOW + timedelta(hours=2)) is RejectReason.EXPIRED
    assert rejection(signed_job(), vin="5YJ3E1EA0PF000002") is RejectReason.WRONG_VEHICLE
    assert rejection(signed_job(), hw_rev="HW3") is RejectReason.INCOMPATIBLE


def test_a_downgrade_is_refused_unless_the_job_allows_it():
    old = release("0.9.0")
    assert rejection(signed_job(rel=old)) is RejectReason.DOWNGRADE
    assert check(signed_job(rel=old, allow_downgrade=True)).release.version == "0.9.0"


def test_a_vehicle_below_the_minimum_source_version_refuses():
    job = signed_job(rel=release(min_from_version="1.5.0"))
    assert rejection(job) is RejectReason.SOURCE_TOO_OLD
