"""The vehicle side of two-phase delivery and the network policy: staging, permits, consent, Wi-Fi only."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime, timedelta

import pytest
from test_job_ota_client import (
    ARTIFACT,
    IMAGE_KEY,
    KEY,
    KEYS,
    T0,
    FakeFetch,
    notice,
    reader,
    run,
    sign,
    signed_job,
)
from test_job_ota_client import vehicle as parked_vehicle

from fleetota_core.domain.install_permit import InstallPermit, SignedInstallPermit
from fleetota_core.domain.job_document import SignedJobDocument
from fleetota_core.domain.report_signature import public_key_pem, report_payload, verify_report
from fleetota_core.domain.telemetry import NetworkType, OtaStatus, TelemetryRecord
from simulator.job_listener import add_ota_fault_arguments
from simulator.ota_client import VehicleOtaClient
from simulator.record import encode
from simulator.vehicle_keys import assign_keys


def two_phase(vehicle, network=NetworkType.WIFI, consent_rate=0.0, **doc_fields):
    """A client holding a signed job with ``doc_fields`` (install policy, cellular) for ``vehicle``."""
    base = signed_job(vehicle)
    doc = base.document.model_copy(update=doc_fields)
    signed = SignedJobDocument(document=doc, signature=sign(doc.signed_bytes()), key_id="k")
    fetch = FakeFetch({"doc:1": signed.model_dump_json().encode()})
    client = VehicleOtaClient(
        KEYS, read_job=reader(fetch), fetch=fetch, install_s=120, consent_rate=consent_rate
    )
    client.deliver([notice(signed, "doc:1")])
    vehicle.network, vehicle.signal_dbm, vehicle.soc = network, -60, 80.0
    return client, fetch, doc


def permit_notice(doc, issued: float, key=KEY) -> dict:
    at = datetime.fromtimestamp(issued, UTC)
    permit = InstallPermit(
        vin=doc.vin, campaign_id=doc.campaign_id, deployment_id=doc.deployment_id, attempt=doc.attempt,
        target_version=doc.release.version, issued_at=at, expires_at=at + timedelta(minutes=30),
    )  # fmt: skip
    signed = SignedInstallPermit(permit=permit, signature=sign(permit.signed_bytes(), key), key_id="k")
    return {"type": "install", "vin": doc.vin, "permit": signed.model_dump(mode="json")}


def test_a_window_job_stages_the_image_and_installs_only_on_a_director_signed_permit():
    v = parked_vehicle()
    client, _, doc = two_phase(v, install_policy="window")
    reports = run(client, v, ticks=20)
    assert reports[-1].status is OtaStatus.DOWNLOADED
    assert reports[-1].bytes_wifi == len(ARTIFACT) and reports[-1].bytes_cellular == 0
    assert v.firmware_version != "9.0.0"
    t = T0 + 60 * 20
    client.deliver([permit_notice(doc, t, key=IMAGE_KEY)])  # signed with the wrong key: ignored
    assert run(client, v, ticks=5, t0=t) == []
    assert client.stats["bad_permits"] == 1
    t += 300
    client.deliver([permit_notice(doc, t)])
    statuses = [r.status for r in run(client, v, ticks=10, t0=t)]
    assert statuses == [OtaStatus.INSTALLING, OtaStatus.SUCCEEDED]
    assert v.firmware_version == "9.0.0"


def test_a_wifi_only_job_pauses_on_cellular_and_downloads_nothing_over_it():
    v = parked_vehicle()
    client, fetch, doc = two_phase(v, network=NetworkType.LTE, cellular_allowed=False)
    lte_then_wifi = [NetworkType.LTE] * 6 + [NetworkType.WIFI] * 30
    reports = run(client, v, ticks=36, network_at=lambda n: lte_then_wifi[n])
    first_fetch = len(fetch.ranges)
    assert reports[0].bytes_wifi and not reports[0].bytes_cellular
    assert reports[-1].status is OtaStatus.SUCCEEDED
    assert client.downloaded[(doc.campaign_id, "cellular")] == 0
    assert client.downloaded[(doc.campaign_id, "wifi")] == len(ARTIFACT) and first_fetch > 0
    assert client.stats["waiting_for_wifi"] >= 5


def test_a_consent_job_installs_when_the_driver_accepts_and_waits_without_consent():
    v = parked_vehicle()
    client, _, _ = two_phase(v, install_policy="consent", consent_deadline_s=3600, consent_rate=1.0)
    statuses = [r.status for r in run(client, v, ticks=30)]
    assert statuses[-3:] == [OtaStatus.DOWNLOADED, OtaStatus.INSTALLING, OtaStatus.SUCCEEDED]
    assert client.stats["consents"] == 1
    w = parked_vehicle()
    silent, _, _ = two_phase(w, install_policy="consent", consent_deadline_s=3600, consent_rate=0.0)
    assert [r.status for r in run(silent, w, ticks=40)][-1] is OtaStatus.DOWNLOADED


def test_the_byte_counts_are_signed_so_an_altered_count_fails_verification():
    v = parked_vehicle()
    assign_keys([v])
    client, _, _ = two_phase(v, install_policy="window")
    report = run(client, v, ticks=20)[-1]
    record = TelemetryRecord.model_validate_json(encode(v, T0 + 1200, report))
    key = public_key_pem(v.signing_key)
    assert verify_report(key, report_payload(record), record.ota.signature) is None
    forged = record.model_copy(
        update={"ota": record.ota.model_copy(update={"bytes_cellular": 0, "bytes_wifi": 1})}
    )
    assert verify_report(key, report_payload(forged), forged.ota.signature) == "bad_signature"


def test_the_simulators_consent_rate_flag_takes_a_probability():
    parser = argparse.ArgumentParser()
    add_ota_fault_arguments(parser)
    assert parser.parse_args(["--consent-rate", "0.2"]).consent_rate == 0.2
    assert parser.parse_args([]).consent_rate is None
    with pytest.raises(SystemExit) as exc:
        parser.parse_args(["--consent-rate", "1.5"])
    assert exc.value.code == 2
