"""Registry answers packed small enough for a processor to keep a million of them.

Each processor sees every vehicle (SQS spreads objects at random), so its registry cache holds the
whole fleet. A ``RegisteredVehicle`` costs about 1,460 bytes in memory, 1.46 GB for 1M vehicles, more
than the processor's 1,024 MB. An entry here is one ``bytes``: its expiry, an index into the
distinct (make, model, model year, hw rev, region, status) combinations, the provisioning time and
the key's base64, about 345 bytes with its VIN and its place in the cache (``tests/unit/
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

# expires at (the cache's clock, s), identity index (NOT_REGISTERED: none), provisioned at (us),
# and how the key follows: 1 = the base64 body of a PEM in 64-character lines, 0 = the PEM itself
_HEADER = struct.Struct("<dIqB")
NOT_REGISTERED = 0xFFFFFFFF
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_TIMES_KEPT = 65_536
_PEM_HEAD, _PEM_FOOT = "-----BEGIN PUBLIC KEY-----\n", "-----END PUBLIC KEY-----\n"


def _pem_of(body: str) -> str:
    if len(body) <= 128:  # a P-256 key's 124 characters: two lines
        return (
            f"{_PEM_HEAD}{body[:64]}\n{body[64:]}\n{_PEM_FOOT}"
            if len(body) > 64
            else f"{_PEM_HEAD}{body}\n{_PEM_FOOT}"
        )
    return _PEM_HEAD + "\n".join(body[i : i + 64] for i in range(0, len(body), 64)) + "\n" + _PEM_FOOT


def _packed_key(pem: str) -> tuple[int, bytes]:
    """The key as its base64 body when the PEM is rebuilt from that exactly (54 bytes fewer)."""
    if pem.startswith(_PEM_HEAD) and pem.endswith(_PEM_FOOT):
        body = pem[len(_PEM_HEAD) : -len(_PEM_FOOT)].replace("\n", "")
        if _pem_of(body) == pem:
            return 1, body.encode("ascii")
    return 0, pem.encode("ascii")


class PackedRegistrations:
    """Packs and unpacks cache entries; the identity combinations are shared by every entry."""

    def __init__(self) -> None:
        self._index: dict[tuple[Any, ...], int] = {}
        self._identities: list[dict[str, Any]] = []
        # Provisioning times, shared: a fleet is provisioned in batches stamped alike.
        self._times: dict[int, datetime] = {}

    def clear(self) -> None:
        self._index.clear()
        self._identities.clear()
        self._times.clear()

    def pack(self, vehicle: RegisteredVehicle | None, expires_at: float) -> bytes:
        if vehicle is None:
            return _HEADER.pack(expires_at, NOT_REGISTERED, 0, 0)
        identity = (
            vehicle.make,
            vehicle.model,
            vehicle.model_year,
            vehicle.hw_rev,
            vehicle.region,
            vehicle.status,
        )
        index = self._index.get(identity)
        if index is None:
            index = self._index[identity] = len(self._identities)
            names = ("make", "model", "model_year", "hw_rev", "region", "status")
            self._identities.append(dict(zip(names, identity, strict=True)))
        provisioned_us = (vehicle.provisioned_at - _EPOCH) // timedelta(microseconds=1)
        kind, key = _packed_key(vehicle.public_key_pem)
        return _HEADER.pack(expires_at, index, provisioned_us, kind) + key

    @staticmethod
    def expires_at(entry: bytes) -> float:
        return float(_HEADER.unpack_from(entry)[0])

    def unpack(self, vin: str, entry: bytes, now: float) -> tuple[bool, RegisteredVehicle | None]:
        """(fresh, the registration or None for "not registered"); an expired entry is not unpacked."""
        expires_at, index, provisioned_us, kind = _HEADER.unpack_from(entry)
        if expires_at <= now:
            return False, None
        if index == NOT_REGISTERED:
            return True, None
        key = entry[_HEADER.size :].decode("ascii")
        values = self._identities[index].copy()
        values["vin"] = vin
        values["public_key_pem"] = _pem_of(key) if kind else key
        values["provisioned_at"] = self._time(provisioned_us)
        return True, trusted_registered_vehicle(values)

    def _time(self, microseconds: int) -> datetime:
        at = self._times.get(microseconds)
        if at is None:
            at = _EPOCH + timedelta(microseconds=microseconds)
            if len(self._times) < _TIMES_KEPT:
                self._times[microseconds] = at
        return at
