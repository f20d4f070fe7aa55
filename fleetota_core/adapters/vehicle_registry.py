"""The vehicle registry table (pk ``vin``): provisioned identity and public key per vehicle.

This module is the table's codec: no other module knows its attribute names. Lookups are one
BatchGetItem per 100 distinct VINs; writes are BatchWriteItem requests of 25
(AWS's limit), unprocessed items resent. Every write that changes an existing registration is
recorded in the registry change feed afterwards (``adapters/registry_changes.py``), so processors
that keep registry answers for a day drop theirs within seconds.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from itertools import islice
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError as PydanticValidationError

from fleetota_core.adapters.aws_errors import AWS_CLIENT_ERRORS, reading, translate
from fleetota_core.adapters.dynamo_items import from_item, to_item
from fleetota_core.adapters.registry_changes import RegistryChangeFeed
from fleetota_core.domain.vehicle_identity import RegisteredIdentity, RegisteredVehicle, RegistrationStatus
from fleetota_core.errors import ConfigurationError, FleetOTAError, TransientAWSError

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

    from fleetota_core.adapters.resources import Resources

BATCH_GET_LIMIT = 100
BATCH_WRITE_LIMIT = 25
IDENTITY_THREADS = 8
_IDENTITY_ATTRIBUTES = ("vin", "make", "model", "model_year", "hw_rev", "region", "status")
_IDENTITY_NAMES = {f"#i{n}": name for n, name in enumerate(_IDENTITY_ATTRIBUTES)}
_ACTIVE = RegistrationStatus.ACTIVE.value
_IDENTITY_PROJECTION = {
    "ProjectionExpression": ", ".join(_IDENTITY_NAMES),
    "ExpressionAttributeNames": _IDENTITY_NAMES,
}  # BatchWriteItem's limit (moto accepts more; AWS does not)
_KEY_ONLY = {"ProjectionExpression": "vin"}


def registry_item(vehicle: RegisteredVehicle) -> dict[str, Any]:
    return to_item(
        {
            "vin": vehicle.vin,
            "make": vehicle.make,
            "model": vehicle.model,
            "model_year": vehicle.model_year,
            "hw_rev": vehicle.hw_rev,
            "region": vehicle.region,
            "public_key_pem": vehicle.public_key_pem,
            "provisioned_at": vehicle.provisioned_at.astimezone(UTC).isoformat(),
            "status": vehicle.status.value,
        }
    )


def vehicle_from_registry_item(item: dict[str, Any]) -> RegisteredVehicle | None:
    """The registered vehicle, or None for an item that is not one (never trusted blindly)."""
    values = from_item(item) or {}
    try:
        return RegisteredVehicle.model_validate(values)
    except PydanticValidationError:
        return None


def _batches(values: Iterable[str], size: int) -> Iterator[list[str]]:
    it = iter(values)
    while batch := list(islice(it, size)):
        yield batch


def identity_from_item(item: dict[str, Any]) -> RegisteredIdentity | None:
    """A projected registry item's identity, or None for one this version cannot read (not a vehicle
    to target). Read straight from the attribute values when each is of its usual type (a targeting
    read takes 1,000,000 of them), else through the general codec, with the same result."""
    return _typed_identity(item) or _decoded_identity(item)


def _typed_identity(item: dict[str, Any]) -> RegisteredIdentity | None:
    try:
        status = item["status"]["S"] if "status" in item else _ACTIVE
        return RegisteredIdentity(
            item["vin"]["S"], item["make"]["S"], item["model"]["S"], int(item["model_year"]["N"]),
            item["hw_rev"]["S"], item["region"]["S"], status == _ACTIVE,
        )  # fmt: skip
    except (KeyError, TypeError, ValueError):
        return None  # an attribute of another type, or missing: the general codec decides


def _decoded_identity(item: dict[str, Any]) -> RegisteredIdentity | None:
    values = from_item(item) or {}
    try:
        return RegisteredIdentity(
            str(values["vin"]),
            str(values["make"]),
            str(values["model"]),
            int(values["model_year"]),
            str(values["hw_rev"]),
            str(values["region"]),
            values.get("status", _ACTIVE) == _ACTIVE,
        )
    except (KeyError, TypeError, ValueError):
        return None


class VehicleRegistry:
    """Accepts an injected DynamoDB client. Writing needs ``changes``, the registry change feed
    (:meth:`of_stack` wires both); reading does not."""

    def __init__(self, dynamodb: Any, table: str, changes: RegistryChangeFeed | None = None) -> None:
        self.dynamodb = dynamodb
        self.table = table
        self.changes = changes

    @classmethod
    def of_stack(cls, dynamodb: Any, resources: Resources) -> VehicleRegistry:
        """The stack's registry with its change feed (in the ledger table): what writers use."""
        return cls(dynamodb, resources.registry_table, RegistryChangeFeed(dynamodb, resources.ledger_table))

    def get_many(self, vins: Iterable[str]) -> dict[str, RegisteredVehicle]:
        """The registered vehicles among ``vins`` (distinct), in batches of 100 keys."""
        distinct = list(dict.fromkeys(vins))
        found: dict[str, RegisteredVehicle] = {}
        for start in range(0, len(distinct), BATCH_GET_LIMIT):
            keys = [{"vin": {"S": vin}} for vin in distinct[start : start + BATCH_GET_LIMIT]]
            for item in self._batch_get(keys):
                vehicle = vehicle_from_registry_item(item)
                if vehicle is not None:
                    found[vehicle.vin] = vehicle
        return found

    def _batch_get(
        self, keys: list[dict[str, Any]], projection: dict[str, Any] | None = None
    ) -> list[dict[str, Any]]:
        request: dict[str, Any] = {self.table: {"Keys": keys, **(projection or {})}}
        items: list[dict[str, Any]] = []
        for attempt in range(6):
            with reading(f"vehicle registry {self.table}"):
                response = self.dynamodb.batch_get_item(RequestItems=request)
            items.extend(response.get("Responses", {}).get(self.table, []))
            request = response.get("UnprocessedKeys") or {}
            if not request:
                return items
            time.sleep(0.05 * 2**attempt)
        raise TransientAWSError(f"reading vehicle registry {self.table}: keys still unprocessed")

    def identities(
        self, vins: Iterable[str], threads: int = IDENTITY_THREADS
    ) -> dict[str, RegisteredIdentity]:
        """Identity and status of the registered vehicles among ``vins``: BatchGetItem of 100 keys,
        projected (no public key to read or check), ``threads`` requests at a time (targeting).

        Each 100 VINs are asked for as soon as ``vins`` yields them, so a caller that checks a
        million snapshot rows has the registry answer while it checks the rest.
        """
        chunks = _batches(vins, BATCH_GET_LIMIT)
        found: dict[str, RegisteredIdentity] = {}
        with ThreadPoolExecutor(max_workers=threads) as pool:
            for items in pool.map(self._identity_chunk, chunks):
                found.update((i.vin, i) for i in items)
        return found

    def _identity_chunk(self, vins: list[str]) -> list[RegisteredIdentity]:
        keys = [{"vin": {"S": vin}} for vin in dict.fromkeys(vins)]
        items = (identity_from_item(item) for item in self._batch_get(keys, _IDENTITY_PROJECTION))
        return [i for i in items if i is not None]

    def refresh_many(self, vins: Iterable[str]) -> dict[str, RegisteredVehicle]:
        """This adapter keeps no cache: the same as :meth:`get_many`."""
        return self.get_many(vins)

    def all(self, limit: int | None = None) -> list[RegisteredVehicle]:
        """Every registered vehicle, or the first ``limit`` (a scan: for targeting and the vehicles
        page, never per record)."""
        out: list[RegisteredVehicle] = []
        with reading(f"vehicle registry {self.table}"):
            for page in self.dynamodb.get_paginator("scan").paginate(TableName=self.table):
                vehicles = (vehicle_from_registry_item(i) for i in page.get("Items", []))
                out.extend(v for v in vehicles if v is not None)
                if limit is not None and len(out) >= limit:
                    return out[:limit]
        return out

    def existing(self, vins: Iterable[str]) -> set[str]:
        """Which of ``vins`` are in the table (whatever their item holds): projected to the key."""
        found: set[str] = set()
        for chunk in _batches(dict.fromkeys(vins), BATCH_GET_LIMIT):
            keys = [{"vin": {"S": vin}} for vin in chunk]
            found.update(item["vin"]["S"] for item in self._batch_get(keys, _KEY_ONLY))
        return found

    def put_many(self, vehicles: Iterable[RegisteredVehicle]) -> int:
        """Register (or re-register) ``vehicles``, 25 a request; the number written.

        The VINs that were registered already (a retirement, a new key, an edited attribute, or the
        same again) then go to the change feed; brand-new VINs need not (processors keep "not
        registered" for 30 s only). Two writers creating the same new VIN at once are not told apart.
        """
        if self.changes is None:
            raise ConfigurationError(
                f"writing vehicle registry {self.table} needs its change feed (VehicleRegistry.of_stack)"
            )
        vehicles = list(vehicles)
        replaced = self.existing(v.vin for v in vehicles)
        written = self._write(vehicles)
        if replaced:
            try:
                self.changes.record(sorted(replaced), datetime.now(UTC))
            except FleetOTAError as exc:
                raise type(exc)(
                    f"{len(replaced)} existing registrations were rewritten in {self.table}, but the "
                    f"registry change feed was not updated, so processors may use the previous ones "
                    f"for up to a day; provision them again ({exc})"
                ) from exc
        return written

    def _write(self, vehicles: list[RegisteredVehicle]) -> int:
        items = [{"PutRequest": {"Item": registry_item(v)}} for v in vehicles]
        for start in range(0, len(items), BATCH_WRITE_LIMIT):
            request: dict[str, Any] = {self.table: items[start : start + BATCH_WRITE_LIMIT]}
            for attempt in range(8):
                try:
                    response = self.dynamodb.batch_write_item(RequestItems=request)
                except AWS_CLIENT_ERRORS as exc:
                    raise translate(exc, f"writing vehicle registry {self.table}") from exc
                request = response.get("UnprocessedItems") or {}
                if not request:
                    break
                time.sleep(0.05 * 2**attempt)
            else:
                raise TransientAWSError(f"writing vehicle registry {self.table}: items still unprocessed")
        return len(items)
