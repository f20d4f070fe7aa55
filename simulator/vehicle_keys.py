"""Each simulated vehicle's own ECDSA P-256 key: it signs the vehicle's OTA reports.

Private keys live with the simulator's fleet (in memory, and in its ``--fleet-file`` when one is
written, so a restarted simulator keeps its keys); public keys go to the vehicle registry when the
fleet is provisioned (:func:`register_fleet`).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from cryptography.hazmat.primitives.asymmetric import ec

from fleetota_core.domain.report_signature import canonical_report, public_key_pem, sign_payload
from fleetota_core.domain.vehicle_identity import RegisteredVehicle

if TYPE_CHECKING:
    from collections.abc import Mapping

    from fleetota_core.domain.telemetry import OtaReport
    from simulator.vehicle import SimVehicle


def private_key_hex(key: ec.EllipticCurvePrivateKey) -> str:
    return f"{key.private_numbers().private_value:064x}"


def key_from_hex(text: str) -> ec.EllipticCurvePrivateKey:
    return ec.derive_private_key(int(text, 16), ec.SECP256R1())


def assign_keys(fleet: list[SimVehicle], known: Mapping[str, str] | None = None) -> None:
    """Give every vehicle without a key one: its key from ``known`` (vin -> hex), else a new one."""
    known = known or {}
    for v in fleet:
        if v.signing_key is None:
            text = known.get(v.vin)
            v.signing_key = key_from_hex(text) if text else ec.generate_private_key(ec.SECP256R1())


def fleet_private_keys(fleet: list[SimVehicle]) -> dict[str, str]:
    return {v.vin: private_key_hex(v.signing_key) for v in fleet if v.signing_key is not None}


def registrations(fleet: list[SimVehicle], now: datetime | None = None) -> list[RegisteredVehicle]:
    """The registry entries of ``fleet`` (keys assigned first where missing)."""
    assign_keys(fleet)
    at = now or datetime.now(UTC)
    return [
        RegisteredVehicle(
            vin=v.vin,
            make=v.make,
            model=v.model,
            model_year=v.model_year,
            hw_rev=v.hw_rev,
            region=v.metro.region,
            public_key_pem=public_key_pem(v.signing_key),
            provisioned_at=at,
        )
        for v in fleet
    ]


def register_fleet(clients: Any, resources: Any, fleet: list[SimVehicle]) -> int:
    """Provision ``fleet`` in the stack's vehicle registry (re-registering keeps it current)."""
    from fleetota_core.adapters.vehicle_registry import VehicleRegistry

    return VehicleRegistry.of_stack(clients.dynamodb, resources).put_many(registrations(fleet))


def sign_report(v: SimVehicle, ts_iso: str, report: OtaReport) -> OtaReport:
    """``report`` as ``v`` sends it at ``ts_iso`` (the record's ``ts``): signed, if ``v`` has a key."""
    if v.signing_key is None:
        return report
    ts = datetime.fromisoformat(ts_iso.replace("Z", "+00:00"))
    payload = canonical_report(
        v.vin,
        ts,
        v.firmware_version,
        report.campaign_id,
        report.deployment_id,
        report.attempt,
        report.status.value,
        report.target_version,
        report.error_code,
        None
        if report.delivery is None
        else (report.delivery.artifact, report.delivery.downloaded_bytes, report.delivery.fallback),
        report.bytes_wifi,
        report.bytes_cellular,
    )
    return report.model_copy(update={"signature": sign_payload(v.signing_key, payload)})
