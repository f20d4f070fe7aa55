"""The vehicle OTA client: checks before download, resumable download, install, faults."""

from __future__ import annotations

import base64
import hashlib
import threading
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from fleetota_core.domain.firmware import FirmwareManifest, FirmwareRelease
from fleetota_core.domain.job_document import JobDocument, SignedJobDocument, TrustedKeys
from fleetota_core.domain.telemetry import NetworkType
from fleetota_core.errors import ConfigurationError
from simulator.fleet import generate_fleet
from simulator.ota_client import MAX_JOB_DOCUMENT_BYTES, OtaFaults, VehicleOtaClient, http_fetch
from simulator.ota_memory import VehicleOtaMemory

KEY = ec.generate_private_key(ec.SECP256R1())  # the director key: job documents
IMAGE_KEY = ec.generate_private_key(ec.SECP256R1())  # the image key: release manifests
KEYS = TrustedKeys(image=IMAGE_KEY.public_key(), director=KEY.public_key())
T0 = datetime(2026, 1, 7, 3, 0, tzinfo=UTC).timestamp()
ARTIFACT = bytes(range(256)) * 32_000  # 8 MB: several ticks on a weak 3G link


def sign(payload: bytes, key=KEY) -> str:
    return base64.b64encode(key.sign(payload, ec.ECDSA(hashes.SHA256()))).decode()


class FakeFetch:
    """Serves the job document and the artifact; counts ranged requests to prove resumption."""

    def __init__(
        self, documents: dict[str, bytes], artifact: bytes = ARTIFACT, endless: bool = False
    ) -> None:
        self.documents = documents
        self.artifact = artifact
        self.endless = endless  # a hostile server: 64 MiB whatever the range asked for
        self.ranges: list[tuple[int, int]] = []

    def __call__(self, url: str, start: int | None, end: int | None) -> bytes:
        if url.startswith("doc:"):
            return self.documents[url]
        self.ranges.append((start, end))
        return bytes(64 * 2**20) if self.endless else self.artifact[start : end + 1]


def signed_job(vehicle, version="9.0.0", campaign="c1", issued=T0, allow_downgrade=False, body=ARTIFACT):
    manifest = FirmwareManifest(
        version=version, sha256=hashlib.sha256(body).hexdigest(), size_bytes=len(body),
        models=(vehicle.model,), artifact_key="a", created_at=datetime.fromtimestamp(T0, UTC), created_by="t",
    )  # fmt: skip
    release = FirmwareRelease(
        manifest=manifest, signature=sign(manifest.signed_bytes(), IMAGE_KEY), key_id="k"
    )
    doc = JobDocument(
        campaign_id=campaign, deployment_id=f"{campaign}.{vehicle.vin}", vin=vehicle.vin, attempt=1,
        release=release, download_url="artifact", issued_at=datetime.fromtimestamp(issued, UTC),
        expires_at=datetime.fromtimestamp(issued, UTC) + timedelta(hours=1), allow_downgrade=allow_downgrade,
    )  # fmt: skip
    return SignedJobDocument(document=doc, signature=sign(doc.signed_bytes()), key_id="k")


def reader(fetch: FakeFetch):
    """The vehicle's read of its own job document, by key, from the fake's documents."""
    return lambda vin, key: fetch(key, None, None)


def notice(signed: SignedJobDocument, key: str) -> dict:
    doc = signed.document
    return {
        "type": "job", "vin": doc.vin, "campaign_id": doc.campaign_id, "deployment_id": doc.deployment_id,
        "attempt": doc.attempt, "target_version": doc.release.version, "document_key": key,
    }  # fmt: skip


def setup(vehicle, version="9.0.0", allow_downgrade=False, faults=None, network=NetworkType.LTE, **kw):
    signed = signed_job(vehicle, version, allow_downgrade=allow_downgrade)
    fetch = FakeFetch({"doc:1": signed.model_dump_json().encode()})
    client = VehicleOtaClient(KEYS, faults, read_job=reader(fetch), fetch=fetch, install_s=120, **kw)
    client.deliver([notice(signed, "doc:1")])
    vehicle.network, vehicle.signal_dbm, vehicle.soc = network, -70, 80.0
    return client, fetch


def run(client, vehicle, ticks=30, network_at=None, t0=T0):
    reports = []
    for n in range(ticks):
        if network_at:
            vehicle.network = network_at(n)
        effect = client.on_tick(vehicle, t0 + 60 * n)
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


# Uptane-style checks: the document must be the notified job, unused, and of bounded size.


def offer(client, fetch, vehicle, signed, url, note=None, t0=T0):
    """Publish ``signed`` at ``url``, notify the vehicle (with ``note`` or the document's own notice), run."""
    fetch.documents[url] = signed.model_dump_json().encode()
    client.deliver([note or notice(signed, url)])
    return run(client, vehicle, t0=t0)


def test_an_old_rollback_document_copied_over_a_new_campaigns_job_is_refused_and_nothing_installs():
    # Given a vehicle that rolled back 5.2.0 -> 5.0.0 (r1), then upgraded to 5.2.0 again (u1)
    v = vehicle()
    v.firmware_version = "5.2.0"
    v.network, v.signal_dbm, v.soc = NetworkType.LTE, -70, 80.0
    fetch = FakeFetch({})
    client = VehicleOtaClient(KEYS, read_job=reader(fetch), fetch=fetch, install_s=60)
    rollback = signed_job(v, "5.0.0", campaign="r1", allow_downgrade=True)
    assert offer(client, fetch, v, rollback, "doc:r1")[-1].status.value == "SUCCEEDED"
    upgrade = signed_job(v, "5.2.0", campaign="u1", issued=T0 + 3600)
    assert offer(client, fetch, v, upgrade, "doc:u1", t0=T0 + 3600)[-1].status.value == "SUCCEEDED"
    # When an attacker copies the rollback document over campaign n1's job document (target 5.3.0)
    new = signed_job(v, "5.3.0", campaign="n1", issued=T0 + 7200)
    fetch.documents["doc:n1"] = rollback.model_dump_json().encode()
    client.deliver([notice(new, "doc:n1")])
    reports = run(client, v, t0=T0 + 7200)
    # Then the vehicle refuses it as a replay, reports it against n1, and stays on 5.2.0
    last = reports[-1]
    assert (last.status.value, last.error_code) == ("REJECTED", "REPLAYED")
    assert (last.campaign_id, last.target_version) == ("n1", "5.3.0")
    assert v.firmware_version == "5.2.0"


def test_a_signed_document_for_another_campaign_is_refused_as_a_mismatch():
    v = vehicle()
    client, fetch = setup(v)
    other = signed_job(v, "9.0.0", campaign="c2")  # valid, unused, but not what this notice announced
    fetch.documents["doc:1"] = other.model_dump_json().encode()
    last = run(client, v)[-1]
    assert (last.status.value, last.error_code, last.campaign_id) == ("REJECTED", "JOB_MISMATCH", "c1")
    assert fetch.ranges == []


def test_a_refused_document_does_not_disturb_the_job_in_hand():
    v = vehicle()
    client, fetch = setup(v, network=NetworkType.G3)
    v.signal_dbm = -115  # a weak 3G link: the 8 MB download takes many ticks
    assert client.on_tick(v, T0).report.status.value == "DOWNLOADING"
    replayed = signed_job(v, "9.0.0", campaign="old", issued=T0 - 3600)
    fetch.documents["doc:old"] = replayed.model_dump_json().encode()
    client.deliver([{**notice(replayed, "doc:old"), "attempt": 2}])
    refused = client.on_tick(v, T0 + 60).report
    assert (refused.status.value, refused.campaign_id) == ("REJECTED", "old")
    reports = run(client, v, ticks=120, t0=T0 + 120)
    assert reports[-1].status.value == "SUCCEEDED" and reports[-1].campaign_id == "c1"
    assert v.firmware_version == "9.0.0"


def test_a_job_signed_by_the_image_key_is_refused_for_its_role():
    v = vehicle()
    client, fetch = setup(v)
    signed = signed_job(v)
    forged = signed.model_copy(update={"signature": sign(signed.document.signed_bytes(), IMAGE_KEY)})
    fetch.documents["doc:1"] = forged.model_dump_json().encode()
    assert run(client, v)[-1].error_code == "WRONG_KEY_ROLE"


def test_a_finished_job_offered_again_is_refused_as_replayed():
    v = vehicle()
    client, _fetch = setup(v)
    assert run(client, v)[-1].status.value == "SUCCEEDED"
    client.deliver([notice(signed_job(v), "doc:1")])
    last = run(client, v, t0=T0 + 1800)[-1]
    assert (last.status.value, last.error_code) == ("REJECTED", "REPLAYED")


def test_the_vehicle_remembers_its_firmware_and_finished_jobs_across_a_simulator_restart(tmp_path):
    v = vehicle()
    state = tmp_path / "vehicle-ota.json"
    client, _ = setup(v, memory=VehicleOtaMemory(state))
    assert run(client, v)[-1].status.value == "SUCCEEDED"
    assert client.memory.flush(force=True)
    # A restarted simulator regenerates the fleet from its seed: factory firmware, no memory.
    again = vehicle()
    assert again.vin == v.vin and again.firmware_version != "9.0.0"
    restarted, fetch = setup(again, memory=VehicleOtaMemory(state))
    last = run(restarted, again, t0=T0 + 1800)[-1]
    assert again.firmware_version == "9.0.0"
    assert (last.status.value, last.error_code) == ("REJECTED", "REPLAYED")
    assert fetch.ranges == []


def test_an_unreadable_vehicle_state_file_stops_the_simulator_rather_than_forgetting(tmp_path):
    state = tmp_path / "vehicle-ota.json"
    state.write_text("{not json")
    with pytest.raises(ConfigurationError, match="unreadable"):
        VehicleOtaMemory(state)


def test_a_server_that_sends_64_mib_for_a_100_byte_artifact_is_cut_off():
    v = vehicle()
    body = bytes(100)
    signed = signed_job(v, body=body)
    fetch = FakeFetch({"doc:1": signed.model_dump_json().encode()}, artifact=body, endless=True)
    client = VehicleOtaClient(KEYS, read_job=reader(fetch), fetch=fetch, install_s=60)
    client.deliver([notice(signed, "doc:1")])
    v.network, v.signal_dbm, v.soc = NetworkType.LTE, -70, 80.0
    before = v.firmware_version
    last = run(client, v)[-1]
    assert (last.status.value, last.error_code) == ("REJECTED", "ARTIFACT_TOO_LARGE")
    assert v.ota_state is None and v.firmware_version == before


class EndlessHandler(BaseHTTPRequestHandler):
    """Ignores Range and streams 64 MiB; counts what it managed to write before the client hung up."""

    written = 0

    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.end_headers()
        chunk = bytes(64 * 1024)
        try:
            for _ in range(1024):
                self.wfile.write(chunk)
                EndlessHandler.written += len(chunk)
        except (BrokenPipeError, ConnectionResetError):
            return  # the client stopped reading: what this test wants

    def log_message(self, *args):
        return


def test_http_fetch_reads_at_most_one_byte_more_than_the_range_asked_for():
    server = ThreadingHTTPServer(("127.0.0.1", 0), EndlessHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/artifact"
        assert len(http_fetch(url, 0, 99)) == 101
        assert len(http_fetch(url)) == MAX_JOB_DOCUMENT_BYTES + 1
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
    # Two requests of 64 MiB each: the client hung up long before (socket buffers hold a few MiB).
    assert EndlessHandler.written < 2 * 64 * 2**20 * 0.5
