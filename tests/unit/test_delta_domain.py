"""Delta rules: which sources, which artifact a vehicle gets, what a vehicle checks, what is counted."""

from __future__ import annotations

import base64
import hashlib
from datetime import UTC, datetime

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from fleetota_core.domain.delta import (
    DeltaFallback,
    DeltaOffer,
    OtaArtifact,
    delivery_counts,
    delivery_tally,
    delta_for,
    delta_problem,
    delta_sources,
    project_delivery,
)
from fleetota_core.domain.firmware import (
    DeltaManifest,
    FirmwareManifest,
    FirmwareRelease,
    SignedDelta,
    verify_signature,
)
from fleetota_core.domain.job_document import JobDocument
from fleetota_core.domain.report_signature import canonical_report, sign_payload, verify_report
from fleetota_core.domain.report_signature import public_key_pem as pem_of

IMAGE_KEY = ec.generate_private_key(ec.SECP256R1())
OTHER_KEY = ec.generate_private_key(ec.SECP256R1())
NOW = datetime(2026, 12, 1, tzinfo=UTC)
SOURCE = b"source image" * 1000
TARGET = b"target image" * 1000


def sign(payload: bytes, key=IMAGE_KEY) -> str:
    return base64.b64encode(key.sign(payload, ec.ECDSA(hashes.SHA256()))).decode()


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def target_manifest(version: str = "3.5.0", body: bytes = TARGET) -> FirmwareManifest:
    return FirmwareManifest(
        version=version, sha256=sha(body), size_bytes=len(body), models=("M",), artifact_key=f"f/{version}",
        created_at=NOW, created_by="alice",
    )  # fmt: skip


def signed_delta(source: str = "3.4.1", size: int = 1200, key=IMAGE_KEY, target=None, **kw) -> SignedDelta:
    target = target or target_manifest()
    manifest = DeltaManifest(
        target_version=target.version, target_sha256=target.sha256, target_size_bytes=target.size_bytes,
        source_version=source, source_sha256=sha(SOURCE), source_size_bytes=len(SOURCE),
        window_log=kw.get("window_log", 20), sha256=sha(b"patch"), size_bytes=size,
        artifact_key=f"f/{target.version}/delta-from-{source}.zst", created_at=NOW, created_by="alice",
    )  # fmt: skip
    return SignedDelta(manifest=manifest, signature=sign(manifest.signed_bytes(), key), key_id="k")


# ------------------------------------------------------------------ choosing sources and artifacts


def test_the_sources_are_the_most_common_older_versions_ties_going_to_the_newer():
    fleet = ["3.4.1"] * 5 + ["3.4.0"] * 3 + ["3.3.2"] * 3 + ["3.5.0"] * 9 + ["4.0.0"] * 9 + [None, "2.0.0"]

    assert delta_sources(fleet, "3.5.0", 2) == [("3.4.1", 5), ("3.4.0", 3)]
    assert delta_sources(fleet, "3.5.0", 9) == [("3.4.1", 5), ("3.4.0", 3), ("3.3.2", 3), ("2.0.0", 1)]
    assert delta_sources(fleet, "3.5.0", 9, min_from_version="3.4.0") == [("3.4.1", 5), ("3.4.0", 3)]
    assert delta_sources(fleet, "3.5.0", 0) == []


def test_a_vehicle_gets_the_delta_from_its_own_version_and_none_from_another():
    deltas = (signed_delta("3.4.1"), signed_delta("3.4.0"))

    assert delta_for(deltas, "3.4.0") is deltas[1]
    assert delta_for(deltas, "3.3.2") is None
    assert delta_for(deltas, None) is None


def test_the_projection_counts_deltas_for_vehicles_on_a_source_and_full_images_for_the_rest():
    deltas = (signed_delta("3.4.1", size=1000),)

    projection = project_delivery(12_000, deltas, ["3.4.1", "3.4.1", "3.3.2", None])

    assert (projection.vehicles, projection.delta_vehicles) == (4, 2)
    assert projection.full_bytes == 48_000
    assert projection.planned_bytes == 2 * 1000 + 2 * 12_000
    assert projection.saved_bytes == 22_000 and round(projection.saved_pct, 1) == 45.8


# ------------------------------------------------------------------ signatures


def test_a_delta_signature_never_verifies_as_a_release_manifest_and_the_reverse():
    delta = signed_delta()
    manifest = target_manifest()
    release = FirmwareRelease(manifest=manifest, signature=sign(manifest.signed_bytes()), key_id="k")

    assert b'"type":"fleetota-delta-v1"' in delta.manifest.signed_bytes()
    assert not verify_signature(IMAGE_KEY.public_key(), manifest.signed_bytes(), delta.signature)
    assert not verify_signature(IMAGE_KEY.public_key(), delta.manifest.signed_bytes(), release.signature)


def test_a_job_document_without_a_delta_signs_the_same_bytes_as_before_deltas_existed():
    manifest = target_manifest()
    release = FirmwareRelease(manifest=manifest, signature=sign(manifest.signed_bytes()), key_id="k")
    doc = JobDocument(
        campaign_id="c", deployment_id="c.V", vin="V" * 17, attempt=1, release=release, download_url="u",
        issued_at=NOW, expires_at=NOW,
    )  # fmt: skip

    signed = doc.signed_bytes()

    assert b'"delta"' not in signed and b'"deltas"' not in signed
    offer = DeltaOffer(delta=signed_delta(), download_url="d")
    assert b'"delta":{' in doc.model_copy(update={"delta": offer}).signed_bytes()


# ------------------------------------------------------------------ the vehicle's checks before downloading


@pytest.mark.parametrize(
    ("delta", "installed", "reason"),
    [
        (lambda: signed_delta(), ("3.4.1", sha(SOURCE)), None),
        (lambda: signed_delta(key=OTHER_KEY), ("3.4.1", sha(SOURCE)), DeltaFallback.BAD_SIGNATURE),
        (
            lambda: signed_delta(target=target_manifest(body=b"another image")),
            ("3.4.1", sha(SOURCE)),
            DeltaFallback.WRONG_TARGET,
        ),
        (lambda: signed_delta(), ("3.4.0", sha(SOURCE)), DeltaFallback.SOURCE_MISMATCH),
        (lambda: signed_delta(), ("3.4.1", sha(b"a locally modified image")), DeltaFallback.SOURCE_MISMATCH),
        (lambda: signed_delta(size=len(TARGET)), ("3.4.1", sha(SOURCE)), DeltaFallback.TOO_LARGE),
        (lambda: signed_delta(window_log=31), ("3.4.1", sha(SOURCE)), None),
    ],
    ids=["valid", "other-key", "other-target", "other-version", "other-image", "not-smaller", "wide-window"],
)
def test_the_vehicle_takes_a_delta_only_if_signed_for_this_target_and_its_own_image(delta, installed, reason):
    offer = DeltaOffer(delta=delta(), download_url="d")

    problem = delta_problem(offer, IMAGE_KEY.public_key(), target_manifest(), *installed)

    assert problem == reason


def test_a_delta_asking_for_a_larger_window_than_the_vehicle_allows_is_not_taken():
    offer = DeltaOffer(delta=signed_delta(window_log=28), download_url="d")

    problem = delta_problem(offer, IMAGE_KEY.public_key(), target_manifest(), "3.4.1", sha(SOURCE), 27)

    assert problem is DeltaFallback.TOO_LARGE


# ------------------------------------------------------------------ counting


def test_delivery_counters_use_known_names_only_and_cap_the_claimed_bytes():
    counts = delivery_counts(OtaArtifact.FULL, 10**12, "DELTA_CHECKSUM_MISMATCH", 1000)
    hostile = delivery_counts(OtaArtifact.FULL, 500, "x" * 60, 1000)

    assert counts == {"full": 1, "bytes_downloaded": 2000, "bytes_full": 1000,
                      "fallback_DELTA_CHECKSUM_MISMATCH": 1}  # fmt: skip
    assert "fallback_DELTA_OTHER" in hostile and not any("xxx" in k for k in hostile)


def test_the_tally_adds_up_deltas_full_images_fallbacks_and_bytes_saved():
    counters: dict[str, int] = {}
    for artifact, downloaded, fallback in [
        (OtaArtifact.DELTA, 100, None),
        (OtaArtifact.DELTA, 100, None),
        (OtaArtifact.FULL, 1100, "DELTA_RESULT_MISMATCH"),
    ]:
        for key, n in delivery_counts(artifact, downloaded, fallback, 1000).items():
            counters[key] = counters.get(key, 0) + n

    tally = delivery_tally(counters)

    assert (tally.from_delta, tally.from_full, tally.fallback_count) == (2, 1, 1)
    assert tally.fallbacks == {"DELTA_RESULT_MISMATCH": 1}
    assert (tally.downloaded_bytes, tally.full_image_bytes, tally.saved_bytes) == (1300, 3000, 1700)


def test_the_delivery_is_inside_the_vehicles_report_signature():
    vehicle_key = ec.generate_private_key(ec.SECP256R1())
    fields = ("V" * 17, NOW, "3.4.1", "c", "c.V", 1, "SUCCEEDED", "3.5.0", None)
    as_sent = canonical_report(*fields, ("full", 5000, "DELTA_CHECKSUM_MISMATCH"))
    signature = sign_payload(vehicle_key, as_sent)

    assert canonical_report(*fields).startswith(b'["fleetota-ota-report-v1"')
    assert as_sent.startswith(b'["fleetota-ota-report-v2"')
    assert verify_report(pem_of(vehicle_key), as_sent, signature) is None
    claimed_delta = canonical_report(*fields, ("delta", 5000, None))
    assert verify_report(pem_of(vehicle_key), claimed_delta, signature) == "bad_signature"
