"""The registry decides identity and every OTA report must carry its own vehicle's signature."""

from __future__ import annotations

from datetime import timedelta

from cryptography.hazmat.primitives.asymmetric import ec
from ingest_fakes import (
    NOW,
    FakeChangeFeed,
    FakeRegistry,
    fake_ports,
    ndjson,
    record,
    registered,
    signed,
    vehicle_key,
    vin,
)

from fleetota_core.domain.enrichment import ReleaseCatalog
from fleetota_core.domain.report_signature import public_key_pem
from fleetota_core.services.ingest.registry_cache import RegistryCache
from fleetota_core.services.ingest.telemetry_object import ingest_object

OTA = {"campaign_id": "c1", "deployment_id": "c1.x", "target_version": "3.5.0"}


def ingest(ports, body, key="raw/o.ndjson.gz"):
    return ingest_object(ports.objects.put(key, body), ports, ReleaseCatalog(), NOW)


def chain(n, statuses, **ota):
    """One vehicle's OTA reports, one record each, a second apart."""
    return [
        record(n, seq=i + 1, ts=NOW - timedelta(seconds=30 - i), ota={**OTA, **ota, "status": status})
        for i, status in enumerate(statuses)
    ]


FORGED = ["DOWNLOADING", "VERIFYING", "INSTALLING", "SUCCEEDED"]


def reasons(ports, key="raw/o.ndjson.gz"):
    return [line.reason for line in ports.quarantine.lines.get(key, [])]


def test_a_forged_unsigned_ota_chain_moves_no_deployment_and_is_counted_rejected():
    ports = fake_ports()
    outcome = ingest(ports, ndjson(*chain(1, FORGED), record(2)))

    assert ports.ota_sink.reports == []
    c = ports.ledger.counters
    assert c["ota_report_rejected"] == 4 and c["ota_report_rejected__unsigned"] == 4
    assert c["quarantined__ota_report_rejected"] == 4
    assert c["received"] == 5 == c["stored"] + c["quarantined"]
    assert vin(1) not in ports.vehicles.states  # the forged records change no stored state either
    assert outcome.stored == 1


def test_a_report_altered_after_signing_is_rejected_as_a_bad_signature():
    ports = fake_ports()
    good = signed(chain(1, ["DOWNLOADING"])[0])
    altered = {**good, "ota": {**good["ota"], "status": "SUCCEEDED"}}
    older_firmware = {**good, "firmware_version": "3.4.1"}

    ingest(ports, ndjson(altered, older_firmware))

    assert ports.ota_sink.reports == []
    assert ports.ledger.counters["ota_report_rejected__bad_signature"] == 2


def test_a_report_signed_by_another_vehicles_key_is_rejected():
    ports = fake_ports()
    stolen = signed(chain(1, ["SUCCEEDED"])[0], key=vehicle_key(2))
    garbage = {**stolen, "ota": {**stolen["ota"], "signature": "not base64!"}}

    ingest(ports, ndjson(stolen, garbage))

    assert ports.ota_sink.reports == []
    assert ports.ledger.counters["ota_report_rejected"] == 2
    assert reasons(ports) == ["ota_report_rejected", "ota_report_rejected"]


def test_signed_reports_reach_the_deployments():
    ports = fake_ports()
    ingest(ports, ndjson(*(signed(r) for r in chain(1, FORGED))))

    assert [r.ota.status for r in ports.ota_sink.reports] == FORGED
    assert ports.ledger.counters["ota_report_rejected"] == 0


def test_a_record_of_an_unprovisioned_vin_is_quarantined_unknown_vehicle():
    ports = fake_ports()
    stranger = vin(500)  # valid VIN, never provisioned
    ingest(ports, ndjson(record(500), record(1), signed(record(1, seq=2, ota={**OTA, "status": "RECEIVED"}))))

    assert reasons(ports) == ["unknown_vehicle"]
    assert stranger not in ports.vehicles.states
    c = ports.ledger.counters
    assert c["quarantined__unknown_vehicle"] == 1 and c["received"] == c["stored"] + c["quarantined"] == 3


def test_a_retired_vehicle_is_treated_as_unknown():
    ports = fake_ports()
    ports.registry = FakeRegistry([registered(1, status="retired")])
    ingest(ports, ndjson(record(1)))
    assert reasons(ports) == ["unknown_vehicle"]


def test_identity_claimed_by_telemetry_is_counted_and_the_registry_wins():
    # Given a Polestar provisioned as such, whose telemetry claims to be a Tesla Model 3 on HW4
    ports = fake_ports()
    ports.registry = FakeRegistry(
        [registered(1, make="Polestar", model="Polestar 2", model_year=2022, hw_rev="P2-TCU")]
    )
    ingest(ports, ndjson(record(1, model="Tesla Model 3", hw_rev="HW4")))

    assert ports.ledger.counters["identity_mismatch"] == 1
    state = ports.vehicles.states[vin(1)]
    assert (state.make, state.model, state.model_year, state.hw_rev) == (
        "Polestar",
        "Polestar 2",
        2022,
        "P2-TCU",
    )


def test_the_registry_is_asked_once_per_object_for_its_distinct_vins():
    ports = fake_ports()
    ingest(ports, ndjson(*(record(n % 3, seq=n) for n in range(30))))
    assert ports.registry.calls == [{vin(0), vin(1), vin(2)}]


def test_a_re_provisioned_key_is_honoured_at_once_and_forgeries_cost_one_registry_read_per_30_s():
    # The processor cached vehicle 1's old key; the vehicle was then re-provisioned with a new one.
    inner = FakeRegistry([registered(1)])
    now = [0.0]
    ports = fake_ports()
    ports.registry = RegistryCache(inner, FakeChangeFeed(), clock=lambda: now[0])
    ingest(ports, ndjson(record(1, seq=1, ts=NOW - timedelta(seconds=40))), key="raw/a.ndjson.gz")
    new_key = ec.generate_private_key(ec.SECP256R1())
    inner.vehicles[vin(1)] = registered(1, public_key_pem=public_key_pem(new_key))

    report = signed(chain(1, ["DOWNLOADING"])[0], key=new_key)
    ingest(ports, ndjson(report), key="raw/b.ndjson.gz")
    assert [r.ota.status.value for r in ports.ota_sink.reports] == ["DOWNLOADING"]
    assert "ota_report_rejected" not in ports.ledger.counters

    # Forged reports (the old key is no longer valid) are rejected; within 30 s of the last re-read
    # they do not read the registry again, after that the first one does, once.
    reads = len(inner.calls)
    forged = [signed(r, key=vehicle_key(1)) for r in chain(1, ["VERIFYING", "INSTALLING"])]
    ingest(ports, ndjson(*forged), key="raw/c.ndjson.gz")
    ingest(ports, ndjson(signed(chain(1, ["SUCCEEDED"])[0], key=vehicle_key(1))), key="raw/d.ndjson.gz")
    assert ports.ledger.counters["ota_report_rejected__bad_signature"] == 3
    assert len(inner.calls) == reads
    now[0] = 31.0
    ingest(
        ports,
        ndjson(*(signed(r, key=vehicle_key(1)) for r in chain(1, ["SUCCEEDED"] * 3))),
        key="raw/e.ndjson.gz",
    )
    assert len(inner.calls) == reads + 1
    assert [r.ota.status.value for r in ports.ota_sink.reports] == ["DOWNLOADING"]
