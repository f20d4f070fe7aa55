"""The registry's domain rules: fleet CSV rows, public keys, and the OTA report's canonical encoding."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from fleetota_core.domain.report_signature import (
    canonical_report,
    normalise_public_key,
    public_key_pem,
    sign_payload,
    verify_report,
)
from fleetota_core.domain.vehicle_identity import RegistrationStatus, vehicle_from_row
from fleetota_core.errors import InputError

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
KEY = ec.generate_private_key(ec.SECP256R1())
POINT_HEX = (
    KEY.public_key()
    .public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    .hex()
)
VIN = "LPSED3KAXPL000123"  # a Polestar WMI, valid check digit


def row(**changes: str) -> dict[str, str | None]:
    values: dict[str, str | None] = {
        "vin": VIN,
        "make": "Polestar",
        "model": "Polestar 2",
        "model_year": "2023",
        "hw_rev": "P2-TCU",
        "region": "eu-north",
        "public_key": public_key_pem(KEY),
    }
    values.update(changes)
    return values


def test_canonical_encoding_is_the_documented_json_array():
    payload = canonical_report(
        VIN, datetime(2026, 11, 30, 12, 0, 0, 250_000, tzinfo=UTC), "3.4.1", "c1", "c1.x", 2, "SUCCEEDED",
        "3.5.0", None,
    )  # fmt: skip
    assert payload == (
        b'["fleetota-ota-report-v1","LPSED3KAXPL000123","c1","c1.x",2,"SUCCEEDED","3.4.1","3.5.0","",'
        b"1796040000250]"
    )


def test_a_signature_verifies_only_for_its_key_and_its_exact_payload():
    payload = b'["fleetota-ota-report-v1"]'
    signature = sign_payload(KEY, payload)
    other = public_key_pem(ec.generate_private_key(ec.SECP256R1()))
    assert verify_report(public_key_pem(KEY), payload, signature) is None
    assert verify_report(public_key_pem(KEY), payload + b" ", signature) == "bad_signature"
    assert verify_report(other, payload, signature) == "bad_signature"
    assert verify_report(public_key_pem(KEY), payload, None) == "unsigned"
    assert verify_report(public_key_pem(KEY), payload, "%%%") == "bad_signature"


def test_a_row_with_pem_or_point_key_becomes_a_registered_vehicle():
    from_pem = vehicle_from_row(row(), NOW)
    from_point = vehicle_from_row(row(public_key=POINT_HEX, status="retired"), NOW)
    assert from_pem.public_key_pem == from_point.public_key_pem == normalise_public_key(public_key_pem(KEY))
    assert from_pem.provisioned_at == NOW and from_pem.status is RegistrationStatus.ACTIVE
    assert from_point.status is RegistrationStatus.RETIRED and not from_point.active


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"vin": "LPSED3KA0PL000123"}, r"vin: .*check digit"),
        ({"model": ""}, r"missing model"),
        ({"model_year": "twenty"}, r"model_year: "),
        ({"public_key": "04abcd"}, r"public key: an uncompressed P-256 point is 65 bytes"),
        ({"public_key": "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----"}, r"not a PEM key"),
        ({"status": "stolen"}, r"status: "),
    ],
)
def test_a_bad_row_names_its_problem(changes, message):
    with pytest.raises(InputError, match=message):
        vehicle_from_row(row(**changes), NOW)


def test_a_key_on_another_curve_is_refused():
    p384 = ec.generate_private_key(ec.SECP384R1()).public_key()
    pem = p384.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    with pytest.raises(InputError, match="not an ECDSA P-256 key"):
        normalise_public_key(pem.decode())
