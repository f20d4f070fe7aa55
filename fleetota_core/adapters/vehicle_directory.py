"""The vehicles table as the campaign use cases read it: identity and latest state, for targeting
and eligibility. Items that are not yet a whole vehicle (no identity) are left out."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from fleetota_core.adapters.aws_errors import reading
from fleetota_core.adapters.dynamo_items import from_item
from fleetota_core.domain.vehicle import Vehicle


def vehicle_from_item(item: dict[str, Any] | None) -> Vehicle | None:
    if not item:
        return None
    try:
        return Vehicle.model_validate(item)
    except ValidationError:
        return None


class VehicleDirectory:
    def __init__(self, dynamodb: Any, table: str) -> None:
        self.dynamodb = dynamodb
        self.table = table

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
        return out

    def all(self) -> list[Vehicle]:
        # Targeting read: the whole fleet, once per campaign creation or preview.
        out: list[Vehicle] = []
        with reading(f"table {self.table}"):
            for page in self.dynamodb.get_paginator("scan").paginate(TableName=self.table):
                vehicles = (vehicle_from_item(from_item(i)) for i in page.get("Items", []))
                out.extend(v for v in vehicles if v is not None)
        return out
