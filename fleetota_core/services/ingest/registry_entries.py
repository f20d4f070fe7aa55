"""Registry answers packed small enough for a processor to keep a million of them.

Each processor sees every vehicle (SQS spreads objects at random), so its registry cache holds the
whole fleet. A ``RegisteredVehicle`` costs about 1,460 bytes in memory, 1.46 GB for 1M vehicles, more
than the processor's 1,024 MB. An entry here is one ``bytes``: its expiry, an index into the
distinct (make, model, model year, hw rev, region, status) combinations, the provisioning time and
the PEM key, about 365 bytes with its VIN and its place in the cache (``tests/unit/
test_registry_cache.py`` measures it). Unpacking builds the ``RegisteredVehicle`` again without
validating it a second time: it was validated when read from the table.
"""

from __future__ import annotations

import struct
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from fleetota_core.domain.vehicle_identity import trusted_registered_vehicle

if TYPE_CHECKING:
    from fleetota_core.domain.vehicle_identity import RegisteredVehicle

# expires at (the cache's clock, s), identity index (NOT_REGISTERED: none), provisioned at (us)
_HEADER = struct.Struct("<dIq")
NOT_REGISTERED = 0xFFFFFFFF
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class PackedRegistrations:
    """Packs and unpacks cache entries; the identity combinations are shared by every entry."""

    def __init__(self) -> None:
        self._index: dict[tuple[Any, ...], int] = {}
        self._identities: list[dict[str, Any]] = []

    def clear(self) -> None:
        self._index.clear()
        self._identities.clear()

    def pack(self, vehicle: RegisteredVehicle | None, expires_at: float) -> bytes:
        if vehicle is None:
            return _HEADER.pack(expires_at, NOT_REGISTERED, 0)
        identity = (vehicle.make, vehicle.model, vehicle.model_year, vehicle.hw_rev, vehicle.region, vehicle.status)
        index = self._index.get(identity)
        if index is None:
            index = self._index[identity] = len(self._identities)
            names = ("make", "model", "model_year", "hw_rev", "region", "status")
            self._identities.append(dict(zip(names, identity, strict=True)))
        provisioned_us = (vehicle.provisioned_at - _EPOCH) // timedelta(microseconds=1)
        return _HEADER.pack(expires_at, index, provisioned_us) + vehicle.public_key_pem.encode("ascii")

    @staticmethod
    def expires_at(entry: bytes) -> float:
        return float(_HEADER.unpack_from(entry)[0])

    def unpack(self, vin: str, entry: bytes) -> RegisteredVehicle | None:
        _, index, provisioned_us = _HEADER.unpack_from(entry)
        if index == NOT_REGISTERED:
            return None
        return trusted_registered_vehicle(
            {
                **self._identities[index],
                "vin": vin,
                "public_key_pem": entry[_HEADER.size :].decode("ascii"),
                "provisioned_at": _EPOCH + timedelta(microseconds=provisioned_us),
            }
        )
