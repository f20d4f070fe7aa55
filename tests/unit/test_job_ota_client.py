"""The vehicle OTA client: checks before download, resumable download, install, faults."""

from __future__ import annotations

import base64
import hashlib
from datetime import UTC, datetime, timedelta

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from fleetota_core.domain.firmware import FirmwareManifest, FirmwareRelease
from fleetota_core.domain.job_document import JobDocument, SignedJobDocument
from fleetota_core.domain.telemetry import NetworkType
from simulator.fleet import generate_fleet
from simulator.ota_client import OtaFaults, VehicleOtaClient

KEY = ec.generate_private_key(ec.SECP256R1())
PUBLIC_DER = KEY.public_key().public_bytes(
    serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
)
T0 = datetime(2026, 1, 7, 3, 0, tzinfo=UTC).timestamp()
ARTIFACT = bytes(range(256)) * 32_000  # 8 MB: several ticks on a weak 3G link


def sign(payload: bytes) -> str:
    return base64.b64encode(KEY.sign(payload, ec.ECDSA(hashes.SHA256()))).decode()


class FakeFetch:
    """Serves the job document and the artifact; counts ranged requests to prove resumption."""

    def __init__(self, documents: dict[str, bytes]) -> None:
        self.documents = documents
        self.ranges: list[tuple[int, int]] = []

    def __call__(self, url: str, start: int | None, end: int | None) -> bytes:
        if url.startswith("doc:"):
            return self.documents[url]
        self.ranges.append((start, end))
        return ARTIFACT[start : end + 1]


def setup(vehicle, version="9.0.0", allow_downgrade=False, faults=None, network=NetworkType.LTE):
    manifest = FirmwareManifest(
        version=version, sha256=hashlib.sha256(ARTIFACT).hexdigest(), size_bytes=len(ARTIFACT),
        models=(vehicle.model,), artifact_key="a", created_at=datetime.fromtimestamp(T0, UTC), created_by="t",
    )  # fmt: skip
    release = FirmwareRelease(manifest=manifest, signature=sign(manifest.signed_bytes()), key_id="k")
    doc = JobDocument(
        campaign_id="c1", deployment_id=f"c1.{vehicle.vin}", vin=vehicle.vin, attempt=1, release=release,
        download_url="artifact", issued_at=datetime.fromtimestamp(T0, UTC),
        expires_at=datetime.fromtimestamp(T0, UTC) + timedelta(hours=1), allow_downgrade=allow_downgrade,
    )  # fmt: skip
    signed = SignedJobDocument(document=doc, signature=sign(doc.signed_bytes()), key_id="k")
    fetch = FakeFetch({"doc:1": signed.model_dump_json().encode()})
    client = VehicleOtaClient(
        PUBLIC_DER, faults, read_job=lambda vin, key: fetch(key, None, None), fetch=fetch, install_s=120
    )
    note = {"type": "job", "vin": vehicle.vin, "campaign_id": "c1", "deployment_id": doc.deployment_id}
    client.deliver([{**note, "attempt": 1, "document_key": "doc:1"}])
    vehicle.network, vehicle.signal_dbm, vehicle.soc = network, -70, 80.0
    return client, fetch


def run(client, vehicle, ticks=30, network_at=None):
    reports = []
    for n in range(ticks):
        if network_at:
            vehicle.network = network_at(n)
        effect = client.on_tick(vehicle, T0 + 60 * n)
        if effect is not None and effect.report is not None:
            reports.append(effect.report)
            if effect.report.status.value in ("SUCCEEDED", "FAILED", "REJECTED"):
                break
    return reports


def vehicle():
    v = generate_fleet(1, 3)[0]
    v.driving = False
    return v


def test_a_valid_job_is_downloaded_verified_installed_and_reported_step_by_step():
    v = vehicle()
    client, _ = setup(v)
    statuses = [r.status.value for r in run(client, v)]
    assert statuses[0] == "DOWNLOADING" and statuses[-3:] == ["VERIFYING", "INSTALLING", "SUCCEEDED"]
    assert v.firmware_version == "9.0.0"


def test_a_download_resumes_from_its_offset_after_a_drop_out():
    v = vehicle()
    client, fetch = setup(v, network=NetworkType.G3)
    v.signal_dbm = -115  # a weak 3G link: about 25 kB/s
    offline = {1, 2, 3}  # the link drops after the first chunk
    reports = run(
        client, v, ticks=120, network_at=lambda n: NetworkType.NONE if n in offline else NetworkType.G3
    )
    assert reports[-1].status.value == "SUCCEEDED"
    starts = [start for start, _ in fetch.ranges]
    assert starts[0] == 0 and len(starts) >= 3  # resumed, never restarted at 0
    assert all(b == e + 1 for (_, e), (b, _) in zip(fetch.ranges, fetch.ranges[1:], strict=False))


def test_a_downgrade_is_rejected_with_the_reason_and_nothing_is_downloaded():
    v = vehicle()
    client, fetch = setup(v, version="0.1.0")
    reports = run(client, v)
    assert (reports[-1].status.value, reports[-1].error_code) == ("REJECTED", "DOWNGRADE_REFUSED")
    assert fetch.ranges == []


def test_a_tampered_download_is_rejected_on_checksum_and_not_installed():
    v = vehicle()
    before = v.firmware_version
    client, _ = setup(v, faults=OtaFaults(tamper_rate=1.0))
    reports = run(client, v)
    assert (reports[-1].status.value, reports[-1].error_code) == ("REJECTED", "CHECKSUM_MISMATCH")
    assert v.firmware_version == before


def test_install_failures_and_a_low_battery_are_reported_as_failures_with_codes():
    v = vehicle()
    client, _ = setup(v, faults=OtaFaults(install_failure_rate=1.0))
    assert run(client, v)[-1].error_code == "INSTALL_TRANSIENT"
    v2 = vehicle()
    client, _ = setup(v2, faults=OtaFaults(low_battery_rate=1.0))
    last = run(client, v2)[-1]
    assert (last.status.value, last.error_code) == ("FAILED", "BATTERY_TOO_LOW")


def test_repeated_interruptions_give_up_as_a_transient_failure():
    v = vehicle()
    client, _ = setup(v, faults=OtaFaults(download_interrupt_rate=1.0), network=NetworkType.G3)
    v.signal_dbm = -119
    last = run(client, v, ticks=60)[-1]
    assert (last.status.value, last.error_code) == ("FAILED", "DOWNLOAD_INTERRUPTED")
