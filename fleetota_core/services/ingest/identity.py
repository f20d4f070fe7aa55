"""Who sent each record: the registry decides identity, and each OTA report must carry its vehicle's
signature.

After decoding, every record of an object is checked against the vehicle registry, looked up once
per object for its distinct VINs (through the processor's ``RegistryCache``, registry_cache.py):

- a VIN the registry does not hold (or holds as retired) is quarantined ``unknown_vehicle``;
- a record whose model or hardware revision disagrees with the registry is counted
  ``identity_mismatch`` and kept with the registry's attributes (the registry wins);
- a record whose OTA report is unsigned or not signed by that vehicle's registered key is
  quarantined ``ota_report_rejected`` (and counted ``ota_report_rejected``), so it can neither move a
  deployment nor change the vehicle's stored state. A signature that fails against a cached key is
  checked once more against the registry's current entry first, so a re-provisioned key counts at once.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import msgspec

from fleetota_core.domain.report_signature import report_payload, verify_report
from fleetota_core.domain.vehicle_identity import RegistrationStatus
from fleetota_core.services.ingest.decode import RAW_EXCERPT_BYTES, DecodedObject, QuarantinedLine

if TYPE_CHECKING:
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
