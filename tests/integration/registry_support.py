"""Provisioning vehicles in the local stack's registry for tests that write vehicle items directly."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec

from fleetota_core.adapters.vehicle_registry import VehicleRegistry
from fleetota_core.domain.report_signature import public_key_pem
from fleetota_core.domain.vehicle_identity import RegisteredVehicle

_KEY = ec.generate_private_key(ec.SECP256R1())  # these vehicles never sign: any valid key will do


def register_items(stack: Any, items: list[dict[str, Any]]) -> None:
    """Register the identity of vehicle items (as written to the vehicles table) in the registry."""
    pem = public_key_pem(_KEY)
    VehicleRegistry.of_stack(stack.clients.dynamodb, stack.resources).put_many(
        RegisteredVehicle(
            vin=item["vin"],
            make=item.get("make", "Tesla"),
            model=item["model"],
            model_year=item.get("model_year", 2023),
            hw_rev=item["hw_rev"],
            region=item.get("region", "us-west"),
            public_key_pem=pem,
            provisioned_at=datetime.now(UTC),
        )
        for item in items
    )
