"""A vehicle's newest reading of an object, to the vehicles table when it is a material change.

Two ways to know whether it is one. A vehicle that reports by exception says so in the reading
(``changed``): that is believed without reading the stored state, bounded per vehicle
(``HintedWriteBound``), and written with an update that keeps the stored OTA status. Readings
without it (older clients) are judged by ``is_material`` against the stored state, read through
the per-process cache (``CachedVehicleStates``), and written whole. Every write is conditional on
(ts, seq), so a vehicle never moves backwards either way.

Deciding and writing are apart: :func:`material_writes` gives the writes, and the invocation's ledger
commit carries them in its transaction (``telemetry_object.commit_outcomes``, issue #16: no request
of their own); :func:`write_now` writes them by themselves when they do not fit there.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from datetime import timedelta
from typing import TYPE_CHECKING

from fleetota_core.domain.enrichment import enrich, is_material, is_newer
from fleetota_core.services.ingest.ports import VehicleWrite

if TYPE_CHECKING:
    from collections.abc import Mapping
    from datetime import datetime

    from fleetota_core.domain.enrichment import ReleaseCatalog, VehicleState
    from fleetota_core.domain.vehicle_identity import RegisteredVehicle
    from fleetota_core.services.ingest.hinted_writes import HintedWriteBound
    from fleetota_core.services.ingest.ports import VehicleStates
    from fleetota_core.services.ingest.wire import WireRecord

# How long after provisioning a vehicle's first reading in each instance counts as changed whatever
# it says (well past the processor's memory of an unknown VIN, services/ingest/identity.py).
NEW_VEHICLE = timedelta(minutes=5)


def write_now(writes: list[VehicleWrite], vehicles: VehicleStates) -> Counter[str]:
    """Write ``writes`` one request each (``vehicle_writes``, and ``stale_vehicle_readings`` for those
    a newer stored state refused)."""
    counters: Counter[str] = Counter()
    whole = [w.state for w in writes if w.whole]
    updates = [w.state for w in writes if not w.whole]
    # A reading with an OTA report carries the vehicle's OTA status itself: the whole item is written
    # (a PutItem, cheaper to evaluate than the update's 26 clauses, for moto's parser above all).
    for batch, write in ((whole, vehicles.put_many), (updates, vehicles.update_many)):
        written, lost = write(batch) if batch else (0, 0)
        counters["vehicle_writes"] += written
        counters["stale_vehicle_readings"] += lost
    return +counters  # without the zeros


def material_writes(
    newest: dict[str, WireRecord],
    vehicles: VehicleStates,
    bound: HintedWriteBound,
    catalog: ReleaseCatalog,
    now: datetime,
    registered: Mapping[str, RegisteredVehicle],
) -> tuple[Counter[str], list[VehicleState], list[VehicleWrite]]:
    """The material changes to write to the vehicles table, and every newer state, written or not.

    Only a material change costs a DynamoDB write (issue #16). A reading that says itself whether it
    is one (``changed``, report by exception) is decided on that, without reading the stored state;
    the others (older clients) are judged by ``is_material`` against the stored state. The states of
    the other newer readings still go to the fleet snapshot's delta, so "last seen" and position stay
    fresh for the dashboard and the update manager with one S3 object per invocation.
    """
    hinted = {vin: r for vin, r in newest.items() if r.changed is not None}
    if not hinted:
        return _writes_judged_on_stored(newest, vehicles, catalog, now, registered)
    counters, seen, writes = _hinted_writes(hinted, bound, catalog, now, registered)
    if len(hinted) < len(newest):
        rest = {vin: r for vin, r in newest.items() if r.changed is None}
        read_counters, read_seen, read_writes = _writes_judged_on_stored(
            rest, vehicles, catalog, now, registered
        )
        counters.update(read_counters)
        seen += read_seen
        writes += read_writes
    return counters, seen, writes


def _state(
    reading: WireRecord, catalog: ReleaseCatalog, now: datetime, registered: Mapping[str, RegisteredVehicle]
) -> VehicleState:
    """The enriched state of a reading, with the registry's make and model year (identity is its)."""
    state = enrich(reading, catalog, now)
    identity = registered.get(reading.vin)
    if identity is not None and (state.make, state.model_year) != (identity.make, identity.model_year):
        state = replace(state, make=identity.make, model_year=identity.model_year)
    return state


def _hinted_writes(
    hinted: dict[str, WireRecord],
    bound: HintedWriteBound,
    catalog: ReleaseCatalog,
    now: datetime,
    registered: Mapping[str, RegisteredVehicle],
) -> tuple[Counter[str], list[VehicleState], list[VehicleWrite]]:
    """Report by exception: the writes of what the vehicle flags ``changed`` (or an OTA report), read nothing.

    The write is conditional on (ts, seq) as ever, and leaves the stored OTA status alone when the
    reading has none (an update); a reading with an OTA report is written whole. A hinted change is
    written at most once per vehicle per window in this instance (``HintedWriteBound``): a vehicle
    flagging every reading does not get a write per record.
    """
    counters: Counter[str] = Counter({"vehicle_state_reads_avoided": len(hinted)})
    at = now.timestamp()
    seen: list[VehicleState] = []
    writes: list[VehicleWrite] = []
    for vin, reading in hinted.items():
        state = _state(reading, catalog, now, registered)
        seen.append(state)
        changed = reading.changed or _new_here(vin, registered, bound, now)
        if reading.ota is not None:
            writes.append(VehicleWrite(state, whole=True))  # carries the vehicle's OTA status itself
        elif not changed and not bound.owes(vin):
            counters["vehicle_writes_skipped"] += 1
        elif bound.admit(vin, at):
            writes.append(VehicleWrite(state, whole=False))
        elif changed:
            counters["vehicle_writes_deferred"] += 1
        else:  # an unchanged reading of a vehicle whose refused change is still waiting for the window
            counters["vehicle_writes_skipped"] += 1
    return counters, seen, writes


def _new_here(
    vin: str, registered: Mapping[str, RegisteredVehicle], bound: HintedWriteBound, now: datetime
) -> bool:
    """Whether ``vin`` was provisioned minutes ago and this instance has not written it since.

    A vehicle that reported before it was provisioned had its changed records quarantined
    (unknown_vehicle) without knowing it; without this, the table would not hold it (nor eligibility
    find it) until its next change or keyframe. At most one write per vehicle per instance.
    """
    identity = registered.get(vin)
    return identity is not None and now - identity.provisioned_at < NEW_VEHICLE and vin not in bound


def _writes_judged_on_stored(
    newest: dict[str, WireRecord],
    vehicles: VehicleStates,
    catalog: ReleaseCatalog,
    now: datetime,
    registered: Mapping[str, RegisteredVehicle],
) -> tuple[Counter[str], list[VehicleState], list[VehicleWrite]]:
    """Read the stored states (through the cache); the readings ``is_material`` finds material are
    the writes, whole items."""
    stored = vehicles.get_many(list(newest))
    counters: Counter[str] = Counter({"vehicle_states_read": len(newest)})
    seen: list[VehicleState] = []
    writes: list[VehicleWrite] = []
    for vin, reading in newest.items():
        previous = stored.get(vin)
        if not is_newer(reading, previous, now):
            counters["stale_vehicle_readings"] += 1
            continue
        state = _state(reading, catalog, now, registered)
        if state.ota_status is None and previous is not None and previous.ota_status is not None:
            # The item is rewritten whole: keep the last OTA status a plain reading does not carry.
            state = replace(state, ota_status=previous.ota_status, ota_campaign_id=previous.ota_campaign_id)
        seen.append(state)
        if is_material(reading, previous, now):
            writes.append(VehicleWrite(state, whole=True))
        else:
            counters["vehicle_writes_skipped"] += 1
    return counters, seen, writes
