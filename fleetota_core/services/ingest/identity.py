"""Who sent each record: the registry decides identity, and each OTA report must carry its vehicle's
signature.

After decoding, every record of an object is checked against the vehicle registry, looked up once
per object for its distinct VINs (and cached for the invocation):

- a VIN the registry does not hold (or holds as retired) is quarantined ``unknown_vehicle``;
- a record whose model or hardware revision disagrees with the registry is counted
  ``identity_mismatch`` and kept with the registry's attributes (the registry wins);
- a record whose OTA report is unsigned or not signed by that vehicle's registered key is
  quarantined ``ota_report_rejected`` (and counted ``ota_report_rejected``), so it can neither move a
  deployment nor change the vehicle's stored state. A signature that fails against a cached key is
  checked once more against the registry's current entry first, so a re-provisioned key counts at once.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import msgspec

from fleetota_core.domain.report_signature import report_payload, verify_report
from fleetota_core.domain.vehicle_identity import RegistrationStatus
from fleetota_core.services.ingest.decode import RAW_EXCERPT_BYTES, DecodedObject, QuarantinedLine

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from fleetota_core.domain.vehicle_identity import RegisteredVehicle
    from fleetota_core.services.ingest.ports import VehicleRegistry
    from fleetota_core.services.ingest.wire import WireRecord

UNKNOWN_VEHICLE = "unknown_vehicle"
OTA_REPORT_REJECTED = "ota_report_rejected"
IDENTITY_MISMATCH = "identity_mismatch"
# Quarantined after decoding: the line number is not known any more, and ``raw`` is the record as
# decoded (re-encoded JSON), which is what was judged.
AFTER_DECODING = 0


@dataclass
class CheckedObject:
    """The decoded object after the identity checks, plus what they counted."""

    decoded: DecodedObject
    counters: Counter[str] = field(default_factory=Counter)
    registered: dict[str, RegisteredVehicle] = field(default_factory=dict)


def _quarantine(record: WireRecord, reason: str, detail: str) -> QuarantinedLine:
    return QuarantinedLine(AFTER_DECODING, reason, detail, msgspec.json.encode(record)[:RAW_EXCERPT_BYTES])


def check_identity(decoded: DecodedObject, registry: VehicleRegistry) -> CheckedObject:
    """Apply the registry to every decoded record; quarantined records join ``decoded.quarantined``."""
    if not decoded.records:
        return CheckedObject(decoded)
    registered = registry.get_many({record.vin for record in decoded.records})
    # Per distinct VIN once: the (model, hw_rev) a record must claim, for active registrations only.
    active = RegistrationStatus.ACTIVE
    expected = {vin: (v.model, v.hw_rev) for vin, v in registered.items() if v.status is active}
    counters: Counter[str] = Counter()
    kept: list[WireRecord] = []
    quarantined = list(decoded.quarantined)
    refreshed: set[str] = set()
    for record in decoded.records:
        identity = expected.get(record.vin)
        if identity is None:
            vehicle = registered.get(record.vin)
            why = "not provisioned" if vehicle is None else f"registration is {vehicle.status.value}"
            quarantined.append(_quarantine(record, UNKNOWN_VEHICLE, f"vin {record.vin}: {why}"))
            continue
        if record.ota is not None:
            problem = verify_report(
                registered[record.vin].public_key_pem, report_payload(record), record.ota.signature
            )
            if problem == "bad_signature" and record.vin not in refreshed:
                # Maybe the vehicle was re-provisioned with a new key since the cache read it.
                refreshed.add(record.vin)
                current = registry.refresh_many({record.vin}).get(record.vin)
                if current is not None and current.status is active:
                    registered[record.vin] = current
                    expected[record.vin] = identity = (current.model, current.hw_rev)
                    problem = verify_report(
                        current.public_key_pem, report_payload(record), record.ota.signature
                    )
            if problem is not None:
                counters[OTA_REPORT_REJECTED] += 1
                counters[f"{OTA_REPORT_REJECTED}__{problem}"] += 1
                detail = f"vin {record.vin} seq {record.seq}: {problem.replace('_', ' ')}"
                quarantined.append(_quarantine(record, OTA_REPORT_REJECTED, detail))
                continue
        if record.model != identity[0] or record.hw_rev != identity[1]:
            counters[IDENTITY_MISMATCH] += 1
            record = msgspec.structs.replace(record, model=identity[0], hw_rev=identity[1])
        kept.append(record)
    return CheckedObject(DecodedObject(kept, quarantined, decoded.gzip_members), counters, registered)


# How long a warm processor trusts what the registry said: a retirement takes effect within
# REGISTERED_TTL_S, a newly provisioned vehicle is accepted within UNKNOWN_TTL_S. A new key is read
# at once, by the re-check of a failing signature, at most once per VIN per REFRESH_MIN_S (so forged
# reports cannot turn into a registry read each).
REGISTERED_TTL_S = 300.0
UNKNOWN_TTL_S = 30.0
REFRESH_MIN_S = 30.0


class RegistryCache:
    """Registry lookups kept by a warm processor for a while (found and not found), like the vehicle
    states: without it every record would cost a registry read, since an object holds up to 1,000
    distinct vehicles. ``clear`` forgets everything (the stack's data was wiped)."""

    def __init__(
        self,
        inner: VehicleRegistry,
        ttl_s: float = REGISTERED_TTL_S,
        unknown_ttl_s: float = UNKNOWN_TTL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.inner = inner
        self.ttl_s = ttl_s
        self.unknown_ttl_s = unknown_ttl_s
        self.clock = clock
        self._known: dict[str, tuple[float, RegisteredVehicle | None]] = {}
        self._refreshed_at: dict[str, float] = {}
        self._lock = threading.Lock()
        self.lookups = 0  # VINs asked of the table, for the cost checks

    def clear(self) -> None:
        with self._lock:
            self._known.clear()
            self._refreshed_at.clear()

    def refresh_many(self, vins: Iterable[str]) -> dict[str, RegisteredVehicle]:
        """Re-read ``vins`` from the table unless this process did so within REFRESH_MIN_S."""
        vins = set(vins)
        now = self.clock()
        with self._lock:
            due = [v for v in vins if now - self._refreshed_at.get(v, -REFRESH_MIN_S) >= REFRESH_MIN_S]
            self._refreshed_at.update(dict.fromkeys(due, now))
        if due:
            self._store(due, self.inner.refresh_many(due), now)
        return self._answer(vins)

    def _store(self, asked: list[str], found: dict[str, RegisteredVehicle], now: float) -> None:
        self.lookups += len(asked)
        with self._lock:
            for vin in asked:
                vehicle = found.get(vin)
                self._known[vin] = (now + (self.ttl_s if vehicle else self.unknown_ttl_s), vehicle)

    def _answer(self, vins: set[str]) -> dict[str, RegisteredVehicle]:
        with self._lock:
            return {vin: entry[1] for vin in vins if (entry := self._known.get(vin)) and entry[1] is not None}

    def get_many(self, vins: Iterable[str]) -> dict[str, RegisteredVehicle]:
        vins = set(vins)
        now = self.clock()
        with self._lock:
            missing = [vin for vin in vins if (entry := self._known.get(vin)) is None or entry[0] <= now]
        if missing:
            self._store(missing, self.inner.get_many(missing), now)
        return self._answer(vins)
