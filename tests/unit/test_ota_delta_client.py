"""The vehicle applies an offered delta, checks the result against the signed full image, falls back."""

from __future__ import annotations

import base64
import hashlib
from datetime import UTC, datetime, timedelta

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from fleetota_core.domain.delta import DeltaOffer
from fleetota_core.domain.firmware import DeltaManifest, FirmwareManifest, FirmwareRelease, SignedDelta
from fleetota_core.domain.job_document import JobDocument, SignedJobDocument, TrustedKeys
from fleetota_core.domain.telemetry import NetworkType
from fleetota_core.services.delta.patch import make_patch
from simulator.firmware_images import catalogue_image
from simulator.fleet import generate_fleet
from simulator.ota_client import VehicleOtaClient

DIRECTOR = ec.generate_private_key(ec.SECP256R1())
IMAGE = ec.generate_private_key(ec.SECP256R1())
KEYS = TrustedKeys(image=IMAGE.public_key(), director=DIRECTOR.public_key())
T0 = datetime(2026, 1, 7, 3, 0, tzinfo=UTC)
SOURCE = catalogue_image("3.4.1")
TARGET = catalogue_image("3.5.0")
PATCH, WINDOW = make_patch(SOURCE, TARGET)


def sign(payload: bytes, key) -> str:
    return base64.b64encode(key.sign(payload, ec.ECDSA(hashes.SHA256()))).decode()


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class Bucket:
    """The firmware bucket as the vehicle sees it through presigned URLs; records every range read."""

    def __init__(self, objects: dict[str, bytes]) -> None:
        self.objects = objects
        self.reads: list[str] = []

    def __call__(self, url: str, start: int | None, end: int | None) -> bytes:
        self.reads.append(url)
        body = self.objects[url]
        return body if start is None or end is None else body[start : end + 1]


def job(vehicle, patch: bytes = PATCH, signed_patch: bytes | None = None) -> tuple[SignedJobDocument, Bucket]:
    """A job for 3.5.0 with a delta from 3.4.1 whose manifest signs ``signed_patch`` (or ``patch``)."""
    target = FirmwareManifest(
        version="3.5.0", sha256=sha(TARGET), size_bytes=len(TARGET), models=(vehicle.model,),
        artifact_key="firmware/3.5.0/full.bin", created_at=T0, created_by="t",
    )  # fmt: skip
    release = FirmwareRelease(manifest=target, signature=sign(target.signed_bytes(), IMAGE), key_id="k")
    signed_patch = patch if signed_patch is None else signed_patch
    delta = DeltaManifest(
        target_version="3.5.0", target_sha256=target.sha256, target_size_bytes=target.size_bytes,
        source_version="3.4.1", source_sha256=sha(SOURCE), source_size_bytes=len(SOURCE), window_log=WINDOW,
        sha256=sha(signed_patch), size_bytes=len(signed_patch), artifact_key="firmware/3.5.0/delta.zst",
        created_at=T0, created_by="t",
    )  # fmt: skip
    offer = DeltaOffer(
        delta=SignedDelta(manifest=delta, signature=sign(delta.signed_bytes(), IMAGE), key_id="k"),
        download_url="delta",
    )
    doc = JobDocument(
        campaign_id="c1", deployment_id=f"c1.{vehicle.vin}", vin=vehicle.vin, attempt=1, release=release,
        download_url="full", issued_at=T0, expires_at=T0 + timedelta(hours=1), delta=offer,
    )  # fmt: skip
    signed = SignedJobDocument(document=doc, signature=sign(doc.signed_bytes(), DIRECTOR), key_id="k")
    return signed, Bucket({"doc": signed.model_dump_json().encode(), "full": TARGET, "delta": patch})


def install(vehicle, signed: SignedJobDocument, bucket: Bucket):
    client = VehicleOtaClient(
        KEYS, read_job=lambda vin, key: bucket(key, None, None), fetch=bucket, install_s=60
    )
    doc = signed.document
    client.deliver([{
        "type": "job", "vin": doc.vin, "campaign_id": doc.campaign_id, "deployment_id": doc.deployment_id,
        "attempt": 1, "target_version": "3.5.0", "document_key": "doc",
    }])  # fmt: skip
    vehicle.network, vehicle.signal_dbm, vehicle.soc, vehicle.driving = NetworkType.WIFI, -60, 80.0, False
    reports = []
    for n in range(30):
        effect = client.on_tick(vehicle, T0.timestamp() + 60 * n)
        if effect is not None and effect.report is not None:
            reports.append(effect.report)
            if effect.report.status.value in ("SUCCEEDED", "FAILED", "REJECTED"):
                break
    return client, reports


def on(version: str):
    vehicle = generate_fleet(1, 3)[0]
    vehicle.firmware_version = version
    return vehicle


def test_a_vehicle_on_the_source_version_installs_from_the_delta_and_downloads_only_the_delta():
    vehicle = on("3.4.1")
    client, reports = install(vehicle, *job(vehicle))

    final = reports[-1]
    assert final.status.value == "SUCCEEDED" and vehicle.firmware_version == "3.5.0"
    assert final.delivery is not None
    assert (final.delivery.artifact, final.delivery.downloaded_bytes, final.delivery.fallback) == (
        "delta",
        len(PATCH),
        None,
    )
    assert len(TARGET) > 5 * len(PATCH)
    assert client.images.image(vehicle.vin, "3.5.0") == TARGET, "the rebuilt image is what it runs now"


def test_a_corrupted_delta_falls_back_to_the_full_image_and_says_why():
    vehicle = on("3.4.1")
    corrupt = bytearray(PATCH)
    corrupt[len(corrupt) // 2] ^= 0xFF
    signed, bucket = job(vehicle, patch=bytes(corrupt), signed_patch=PATCH)

    _, reports = install(vehicle, signed, bucket)

    final = reports[-1]
    assert final.status.value == "SUCCEEDED" and vehicle.firmware_version == "3.5.0"
    assert final.delivery is not None
    assert (final.delivery.artifact, final.delivery.fallback) == ("full", "DELTA_CHECKSUM_MISMATCH")
    assert final.delivery.downloaded_bytes == len(PATCH) + len(TARGET)
    assert "delta" in bucket.reads and "full" in bucket.reads


def test_a_signed_delta_that_rebuilds_another_image_is_caught_by_the_full_image_sha256():
    vehicle = on("3.4.1")
    other, _ = make_patch(SOURCE, catalogue_image("3.5.1"))  # a real patch, validly signed, wrong result
    _, reports = install(vehicle, *job(vehicle, patch=other))

    final = reports[-1]
    assert final.status.value == "SUCCEEDED"
    assert final.delivery is not None
    assert (final.delivery.artifact, final.delivery.fallback) == ("full", "DELTA_RESULT_MISMATCH")


def test_a_vehicle_on_another_version_never_downloads_the_delta():
    vehicle = on("3.4.0")
    signed, bucket = job(vehicle)

    _, reports = install(vehicle, signed, bucket)

    assert reports[-1].status.value == "SUCCEEDED"
    assert reports[-1].delivery is not None and reports[-1].delivery.fallback == "DELTA_SOURCE_MISMATCH"
    assert "delta" not in bucket.reads
