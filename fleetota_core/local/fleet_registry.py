"""Re-provisions the simulator's fleet in the registry after ``local reset`` emptied it.

A running simulator keeps its vehicles and their keys (in its fleet file) across a reset of the
stack; without this, every record it sends afterwards would be quarantined ``unknown_vehicle``
until the simulator restarts. The public keys are derived from the fleet file's private keys.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from cryptography.hazmat.primitives.asymmetric import ec
from pydantic import ValidationError as PydanticValidationError

from fleetota_core.adapters.vehicle_registry import VehicleRegistry
from fleetota_core.domain.report_signature import public_key_pem
from fleetota_core.domain.vehicle_identity import RegisteredVehicle
from fleetota_core.local.simulator_process import FLEET_FILE

if TYPE_CHECKING:
    from pathlib import Path

    from fleetota_core.adapters.clients import ClientFactory
    from fleetota_core.adapters.resources import Resources


def fleet_file_registrations(state_dir: Path, now: datetime) -> list[RegisteredVehicle]:
    """The registry entries of the fleet file's vehicles that have a private key there."""
    try:
        data = json.loads((state_dir / FLEET_FILE.name).read_text())
    except (OSError, ValueError):
        return []
    if not isinstance(data, dict):
        return []
    keys = data.get("private_keys") or {}
    out = []
    for v in data.get("vehicles") or []:
        secret = keys.get(v.get("vin")) if isinstance(v, dict) else None
        if not secret:
            continue
        try:
            pem = public_key_pem(ec.derive_private_key(int(secret, 16), ec.SECP256R1()))
            fields = {k: v.get(k) for k in ("vin", "make", "model", "model_year", "hw_rev", "region")}
            out.append(RegisteredVehicle(**fields, public_key_pem=pem, provisioned_at=now))
        except (ValueError, PydanticValidationError):
            continue  # a damaged entry: that vehicle is provisioned again when the simulator restarts
    return out


def reprovision_simulated_fleet(state_dir: Path, clients: ClientFactory, resources: Resources) -> int:
    """Register the fleet file's vehicles again; the number registered."""
    vehicles = fleet_file_registrations(state_dir, datetime.now(UTC))
    if not vehicles:
        return 0
    return VehicleRegistry.of_stack(clients.dynamodb, resources).put_many(vehicles)
