"""The vehicle's checks on a signed job document, signature first."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from fleetota_core.domain.bounds import MAX_JOB_TTL_S
from fleetota_core.domain.firmware import FirmwareManifest, FirmwareRelease
from fleetota_core.domain.job_document import (
    MAX_CLOCK_SKEW,
    JobCheckFailed,
    JobDocument,
    JobNotice,
    OtaHistory,
    RejectReason,
    SignedJobDocument,
    TrustedKeys,
    check_job,
)

KEY = ec.generate_private_key(ec.SECP256R1())  # the director key: job documents
IMAGE_KEY = ec.generate_private_key(ec.SECP256R1())  # the image key: release manifests
OTHER_KEY = ec.generate_private_key(ec.SECP256R1())
KEYS = TrustedKeys(image=IMAGE_KEY.public_key(), director=KEY.public_key())
NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
VIN = "5YJ3E1EA0PF000001"


def sign(payload: bytes, key=KEY) -> str:
    return base64.b64encode(key.sign(payload, ec.ECDSA(hashes.SHA256()))).decode()


def release(version="2.0.0", key=IMAGE_KEY, **kw) -> FirmwareRelease:
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


def notice_for(job: SignedJobDocument, **kw) -> JobNotice:
    d = job.document
    fields = {
        "vin": VIN,
        "campaign_id": d.campaign_id,
        "deployment_id": d.deployment_id,
        "attempt": d.attempt,
        "target_version": d.release.version,
    }
    return JobNotice(**{**fields, **kw})


def check(job: SignedJobDocument, notice: JobNotice | None = None, **kw):
    args = {
        "model": "Model 3",
        "hw_rev": "HW4",
        "current_version": "1.0.0",
        "now": NOW,
        "history": OtaHistory(),
    }
    return check_job(job, KEYS, notice or notice_for(job), **{**args, **kw})


def rejection(job: SignedJobDocument, notice: JobNotice | None = None, **kw) -> RejectReason:
    with pytest.raises(JobCheckFailed) as exc:
        check(job, notice, **kw)
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
    job = signed_job()
    assert rejection(job, notice_for(job, vin="5YJ3E1EA0PF000002")) is RejectReason.WRONG_VEHICLE
    assert rejection(signed_job(), hw_rev="HW3") is RejectReason.INCOMPATIBLE


def test_a_downgrade_is_refused_unless_the_job_allows_it():
    old = release("0.9.0")
    assert rejection(signed_job(rel=old)) is RejectReason.DOWNGRADE
    assert check(signed_job(rel=old, allow_downgrade=True)).release.version == "0.9.0"


def test_a_vehicle_below_the_minimum_source_version_refuses():
    job = signed_job(rel=release(min_from_version="1.5.0"))
    assert rejection(job) is RejectReason.SOURCE_TOO_OLD


# Key roles (Uptane's image/director split): each key is trusted for its own role only.


def test_a_job_document_signed_by_the_image_key_is_rejected_as_the_wrong_key_role():
    assert rejection(signed_job(key=IMAGE_KEY)) is RejectReason.WRONG_KEY_ROLE


def test_a_manifest_signed_by_the_director_key_is_rejected_as_the_wrong_key_role():
    assert rejection(signed_job(rel=release(key=KEY))) is RejectReason.WRONG_KEY_ROLE


# Binding to the notice (mix-and-match): the document must be the job the vehicle was notified of.


@pytest.mark.parametrize(
    "field, value",
    [("campaign_id", "c2"), ("deployment_id", f"c2.{VIN}"), ("attempt", 2), ("target_version", "3.0.0")],
)
def test_a_document_that_does_not_match_its_notice_is_rejected(field, value):
    job = signed_job()
    with pytest.raises(JobCheckFailed) as exc:
        check(job, notice_for(job, **{field: value}))
    assert exc.value.code is RejectReason.MISMATCH
    assert str(value) in exc.value.detail


def test_a_notice_without_a_target_version_is_not_a_notice():
    with pytest.raises(ValueError, match="target_version"):
        JobNotice.from_message({"vin": VIN, "campaign_id": "c1", "deployment_id": "d", "attempt": 1})


# Replay and rollback: the vehicle's history refuses any job it used, and any issued before it.


def test_a_finished_job_is_refused_as_replayed():
    job = signed_job()
    history = OtaHistory().finished_job(job.document, installed=True)
    assert rejection(job, history=history) is RejectReason.REPLAYED


def test_an_old_rollback_document_replayed_after_a_later_upgrade_is_refused():
    # Given a rollback to 0.9.0 the vehicle once took, then an upgrade to 2.0.0 issued a day later
    rollback = signed_job(
        rel=release("0.9.0"), allow_downgrade=True, campaign_id="r1", deployment_id=f"r1.{VIN}"
    )
    upgrade = signed_job(issued_at=NOW + timedelta(days=1), expires_at=NOW + timedelta(days=2))
    history = OtaHistory().finished_job(rollback.document, installed=True)
    history = history.finished_job(upgrade.document, installed=True)
    later = NOW + timedelta(days=1, hours=1)
    # When the rollback document is offered again, even with a notice that names it
    code = rejection(rollback, history=history, current_version="2.0.0", now=later)
    # Then it is refused, though it is signed and not expired
    assert code is RejectReason.REPLAYED
    assert history.highest_installed == "2.0.0"


def test_a_document_issued_before_the_newest_used_one_is_refused_even_if_never_seen():
    newer = signed_job(issued_at=NOW + timedelta(minutes=10), campaign_id="c2", deployment_id=f"c2.{VIN}")
    history = OtaHistory().accepted(newer.document)
    assert rejection(signed_job(), history=history, now=NOW + timedelta(minutes=11)) is RejectReason.REPLAYED


def test_a_fresh_rollback_issued_for_this_notice_is_accepted():
    history = OtaHistory().finished_job(signed_job().document, installed=True)
    rollback = signed_job(
        rel=release("0.9.0"),
        allow_downgrade=True,
        campaign_id="r1",
        deployment_id=f"r1.{VIN}",
        issued_at=NOW + timedelta(minutes=1),
    )
    doc = check(rollback, history=history, current_version="2.0.0", now=NOW + timedelta(minutes=2))
    assert doc.release.version == "0.9.0"


def test_the_history_survives_a_round_trip_through_json_and_stays_bounded():
    history = OtaHistory()
    for n in range(100):
        history = history.finished_job(signed_job(attempt=n + 1).document, installed=n == 0)
    again = OtaHistory.from_json(history.to_json())
    assert again == history and len(again.finished) == 64
    assert again.finished[-1] == f"c1.{VIN}#100"


# Time: freeze and far-future documents.


def test_a_document_issued_beyond_the_clock_skew_is_rejected():
    future = NOW + MAX_CLOCK_SKEW + timedelta(seconds=1)
    job = signed_job(issued_at=future, expires_at=future + timedelta(hours=1))
    assert rejection(job) is RejectReason.ISSUED_IN_FUTURE
    a_year = signed_job(issued_at=NOW + timedelta(days=365), expires_at=NOW + timedelta(days=366))
    assert rejection(a_year) is RejectReason.ISSUED_IN_FUTURE


def test_a_document_issued_within_the_clock_skew_is_accepted():
    ahead = NOW + MAX_CLOCK_SKEW
    assert check(signed_job(issued_at=ahead, expires_at=ahead + timedelta(hours=1))).attempt == 1


def test_a_document_valid_for_longer_than_the_longest_job_ttl_is_rejected():
    forever = signed_job(allow_downgrade=True, expires_at=NOW + timedelta(seconds=MAX_JOB_TTL_S + 1))
    assert rejection(forever) is RejectReason.LIFETIME
    backwards = signed_job(expires_at=NOW - timedelta(seconds=1))
    assert rejection(backwards) is RejectReason.LIFETIME
    longest = signed_job(expires_at=NOW + timedelta(seconds=MAX_JOB_TTL_S))
    assert check(longest).attempt == 1
