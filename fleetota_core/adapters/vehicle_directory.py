"""The vehicles table as the campaign use cases read it: identity and latest state, for targeting
and eligibility. Items that are not yet a whole vehicle (no identity) are left out.

With a registry table (as every entry point wires it), identity comes from the registry, never from
what telemetry put in the vehicles table: make, model, model year, hardware revision and region are
the registry's, and a vehicle the registry does not hold as active is not a vehicle to target.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from fleetota_core.adapters.aws_errors import reading
from fleetota_core.adapters.dynamo_items import from_item
from fleetota_core.adapters.vehicle_registry import VehicleRegistry
from fleetota_core.domain.vehicle import Vehicle

if TYPE_CHECKING:
    from fleetota_core.domain.vehicle_identity import RegisteredVehicle


def vehicle_from_item(item: dict[str, Any] | None) -> Vehicle | None:
    if not item:
        return None
    try:
        return Vehicle.model_validate(item)
    except ValidationError:
        return None


def with_registered_identity(vehicle: Vehicle, registered: RegisteredVehicle) -> Vehicle:
    return vehicle.model_copy(
        update={
            "make": registered.make,
            "model": registered.model,
            "model_year": registered.model_year,
            "hw_rev": registered.hw_rev,
            "region": registered.region,
        }
    )


class VehicleDirectory:
    def __init__(self, dynamodb: Any, table: str, registry_table: str | None = None) -> None:
        self.dynamodb = dynamodb
        self.table = table
        self.registry = VehicleRegistry(dynamodb, registry_table) if registry_table else None

    def _registered(
        self, vehicles: dict[str, Vehicle], known: dict[str, RegisteredVehicle]
    ) -> dict[str, Vehicle]:
        return {
            vin: with_registered_identity(v, known[vin])
            for vin, v in vehicles.items()
            if vin in known and known[vin].active
        }

    def get_many(self, vins: list[str]) -> dict[str, Vehicle]:
        out: dict[str, Vehicle] = {}
        for start in range(0, len(vins), 100):
            request = {self.table: {"Keys": [{"vin": {"S": vin}} for vin in vins[start : start + 100]]}}
            while request:
                with reading(f"table {self.table}"):
                    response = self.dynamodb.batch_get_item(RequestItems=request)
                for item in response.get("Responses", {}).get(self.table, []):
                    vehicle = vehicle_from_item(from_item(item))
                    if vehicle is not None:
                        out[vehicle.vin] = vehicle
                request = response.get("UnprocessedKeys") or {}
        if self.registry is None:
            return out
        return self._registered(out, self.registry.get_many(list(out)))

    def all(self) -> list[Vehicle]:
        # Targeting read: the whole fleet, once per campaign creation or preview.
        out: dict[str, Vehicle] = {}
        with reading(f"table {self.table}"):
            for page in self.dynamodb.get_paginator("scan").paginate(TableName=self.table):
                vehicles = (vehicle_from_item(from_item(i)) for i in page.get("Items", []))
                out.update((v.vin, v) for v in vehicles if v is not None)
        if self.registry is None:
            return list(out.values())
        known = {v.vin: v for v in self.registry.all()}
        return list(self._registered(out, known).values())
