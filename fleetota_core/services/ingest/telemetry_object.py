"""Ingest one telemetry object: decode, quarantine bad lines, keep each vehicle's newest state, count.

Correct under at-least-once delivery: the ledger marks each object processed in the same atomic
write that adds its counters and writes its vehicles' material changes, vehicle writes are
conditional on (ts, seq), and a duplicate delivery is counted apart from ``received``: noticed
before any work when SQS delivers a message again, at the commit when S3 sent the event twice
(``services/ingest/batch.py``).
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

import msgspec

from fleetota_core.domain.telemetry import TelemetryRecord
from fleetota_core.errors import ResourceNotFoundError
from fleetota_core.services.ingest.decode import MAX_OBJECT_BYTES, UnreadableObjectError, decode_object
from fleetota_core.services.ingest.hinted_writes import HintedWriteBound
from fleetota_core.services.ingest.identity import check_identity
from fleetota_core.services.ingest.ports import MAX_COMMIT_ITEMS
from fleetota_core.services.ingest.state_writes import material_writes, write_now

if TYPE_CHECKING:
    from collections.abc import Iterable

    from fleetota_core.domain.enrichment import ReleaseCatalog, VehicleState
    from fleetota_core.services.ingest.decode import DecodedObject
    from fleetota_core.services.ingest.ports import (
        Ledger,
        ObjectRef,
        OtaReportSink,
        Quarantine,
        TelemetryObjects,
        VehicleRegistry,
        VehicleStates,
        VehicleWrite,
    )
    from fleetota_core.services.ingest.wire import WireRecord

# Upper edges (ms) of the lag histogram kept in the ledger counters: p50/p95 without per-record rows.
LAG_EDGES_MS = (100, 250, 500, 1000, 2000, 3000, 5000, 7500, 10_000, 15_000, 30_000, 60_000, 300_000)


_BUCKET_NAMES = [*(f"lag_le_{edge}" for edge in LAG_EDGES_MS), "lag_le_inf"]


def lag_bucket(lag_ms: float, prefix: str = "lag") -> str:
    """The histogram bucket of one lag: the first edge at or above it."""
    return f"{prefix}{_BUCKET_NAMES[bisect_left(LAG_EDGES_MS, lag_ms)].removeprefix('lag')}"


def object_lag_ms(ref: ObjectRef, now: datetime) -> float | None:
    """Object created (the S3 event's time) to now: the pipeline's own latency, without the device's
    batching, which record lag includes."""
    if not ref.event_time:
        return None
    try:
        created = datetime.fromisoformat(ref.event_time.replace("Z", "+00:00"))
    except ValueError:
        return None
    return max(0.0, (now - created).total_seconds() * 1000) if created.tzinfo else None


@dataclass
class IngestPorts:
    objects: TelemetryObjects
    quarantine: Quarantine
    vehicles: VehicleStates
    ledger: Ledger
    ota_sink: OtaReportSink
    registry: VehicleRegistry
    hinted_writes: HintedWriteBound = field(default_factory=HintedWriteBound)


@dataclass
class IngestOutcome:
    """What happened to one object; ``counters`` is exactly what the ledger added."""

    ref: ObjectRef
    duplicate: bool = False
    object_quarantined: str | None = None
    counters: Counter[str] = field(default_factory=Counter)
    lag_ms: list[float] = field(default_factory=list)
    object_lag_ms: float | None = None
    # Newer states, written to DynamoDB or not (a reading decided on its ``changed`` is not compared
    # with the stored state: it may be older; the snapshot's merge keeps the newest per vehicle).
    states: list[VehicleState] = field(default_factory=list)
    # The material changes among them, for the commit to write (``commit_outcomes``).
    writes: list[VehicleWrite] = field(default_factory=list)

    @property
    def stored(self) -> int:
        return self.counters["stored"]

    @property
    def quarantined(self) -> int:
        return self.counters["quarantined"]


def newest_per_vehicle(records: Iterable[WireRecord]) -> dict[str, WireRecord]:
    """Each vehicle's newest reading by (ts, seq): one state write per vehicle per object.

    A vehicle that reports by exception compares each reading with the last one it flagged
    ``changed``, so a change flagged by an earlier reading of the object is not flagged again by the
    newest: the newest then carries it (it holds the change, or a later one).
    """
    newest: dict[str, WireRecord] = {}
    flagged: set[str] = set()
    for record in records:
        if record.changed:
            flagged.add(record.vin)
        current = newest.get(record.vin)
        if current is None or (record.ts, record.seq) > (current.ts, current.seq):
            newest[record.vin] = record
    for vin in flagged:
        if newest[vin].changed is False:
            newest[vin] = msgspec.structs.replace(newest[vin], changed=True)
    return newest


def ota_reports(records: Iterable[WireRecord]) -> list[TelemetryRecord]:
    """Records carrying an OTA report, as domain records, oldest first per vehicle."""
    reports = [r for r in records if r.ota is not None]
    reports.sort(key=lambda r: (r.vin, r.ts, r.seq))
    return [TelemetryRecord.model_validate_json(msgspec.json.encode(r)) for r in reports]


@dataclass
class Prepared:
    """The per-record work on one object, before any read or write."""

    counters: Counter[str]
    lag_ms: list[float]
    newest: dict[str, WireRecord]


def prepare(decoded: DecodedObject, now: datetime) -> Prepared:
    """Count, histogram the lag and keep each vehicle's newest reading: the per-record CPU work."""
    counters: Counter[str] = Counter()
    counters["received"] = decoded.received
    counters["stored"] = len(decoded.records)
    if decoded.gzip_members:
        counters["gzip_members"] = decoded.gzip_members
    if decoded.quarantined:
        counters["quarantined"] = len(decoded.quarantined)
        counters.update(f"quarantined__{line.reason}" for line in decoded.quarantined)
    now_ms = now.timestamp() * 1000
    lag = [now_ms - 1000 * record.ts.timestamp() for record in decoded.records]
    if lag:
        counters.update(lag_histogram(lag))
        counters["lag_sum_ms"] = int(math.fsum(lag))
    return Prepared(counters, lag, newest_per_vehicle(decoded.records))


def lag_histogram(lag_ms: list[float]) -> dict[str, int]:
    """Non-empty buckets of :func:`lag_bucket` for many lags at once.

    Plain Python, not numpy (no Lambda package carries numpy, issue #16): one sort in C and a
    bisection per edge, so the per-record cost stays a fraction of a microsecond.
    """
    ordered = sorted(lag_ms)
    buckets: dict[str, int] = {}
    below = 0
    for name, edge in zip(_BUCKET_NAMES, (*LAG_EDGES_MS, math.inf), strict=True):
        upto = bisect_right(ordered, edge)  # lags <= edge: the same bucket lag_bucket gives one lag
        if upto > below:
            buckets[name] = upto - below
        below = upto
    return buckets


def ingest_object(
    ref: ObjectRef, ports: IngestPorts, catalog: ReleaseCatalog, now: datetime
) -> IngestOutcome:
    """Process one object exactly once in effect, however often it is delivered.

    Raises whatever the adapters raise for AWS failures (``TransientAWSError`` and others), so the
    queue item fails and is retried; content problems are quarantined and never raise.
    """
    outcome = process_object(ref, ports, catalog, now, ports.ledger.processed_records(ref))
    if not outcome.duplicate:
        commit_outcomes([outcome], ports, now)
    return outcome


def process_object(
    ref: ObjectRef, ports: IngestPorts, catalog: ReleaseCatalog, now: datetime, earlier: int | None
) -> IngestOutcome:
    """All of :func:`ingest_object` but the ledger commit, which :func:`commit_outcomes` then does for
    many objects at once. ``earlier``: what the ledger knows of an earlier delivery (None: nothing)."""
    outcome = IngestOutcome(ref)
    if earlier is not None:
        outcome.duplicate = True
        ports.ledger.count_duplicate(ref, earlier, now)
        return outcome
    counters = outcome.counters
    counters["objects"] += 1
    try:
        if ref.size is not None and ref.size > MAX_OBJECT_BYTES:
            # Not even read: compressed, it is already over the decompressed bound.
            raise UnreadableObjectError(
                "object_too_large", f"{ref.size} bytes > {MAX_OBJECT_BYTES}", {"compressed_bytes": ref.size}
            )
        checked = check_identity(decode_object(ref.key, ports.objects.get(ref), now), ports.registry)
    except (UnreadableObjectError, ResourceNotFoundError) as exc:
        reason = exc.reason if isinstance(exc, UnreadableObjectError) else "object_missing"
        counts = exc.counts if isinstance(exc, UnreadableObjectError) else {}
        ports.quarantine.put_object_reference(ref, reason, str(exc), now, counts)
        outcome.object_quarantined = reason
        counters["objects_quarantined"] += 1
        counters[f"objects_quarantined__{reason}"] += 1
        return _settled(outcome)

    decoded = checked.decoded
    prepared = prepare(decoded, now)
    counters.update(prepared.counters)
    counters.update(checked.counters)
    outcome.lag_ms = prepared.lag_ms
    outcome.object_lag_ms = object_lag_ms(ref, now)
    if outcome.object_lag_ms is not None:
        counters[lag_bucket(outcome.object_lag_ms, "object_lag")] += 1
        counters["object_lag_sum_ms"] += int(outcome.object_lag_ms)
        counters["object_lag_count"] += 1
    if decoded.quarantined:
        ports.quarantine.put_lines(ref, decoded.quarantined, now)
    counters["vehicles_seen"] += len(prepared.newest)
    if prepared.newest:
        state_counters, outcome.states, outcome.writes = material_writes(
            prepared.newest, ports.vehicles, ports.hinted_writes, catalog, now, checked.registered
        )
        counters.update(state_counters)
    reports = ota_reports(decoded.records)
    if reports:
        counters["ota_reports"] += len(reports)
        counters.update({k: v for k, v in ports.ota_sink(reports).items() if v})
    return _settled(outcome)


def _settled(outcome: IngestOutcome) -> IngestOutcome:
    outcome.counters = Counter({k: v for k, v in outcome.counters.items() if v})
    return outcome


def _lost_to_another_delivery(
    outcome: IngestOutcome, ports: IngestPorts, now: datetime, received: int = 0
) -> None:
    # Another delivery of the same object committed first; its counts stand, not ours. ``received``:
    # the records it received, when the commit knows them.
    outcome.duplicate = True
    outcome.counters = Counter()
    ports.ledger.count_duplicate(outcome.ref, received, now)


def commit_outcomes(outcomes: list[IngestOutcome], ports: IngestPorts, now: datetime) -> None:
    """Commit the processed objects of one invocation in one ledger transaction that also carries
    their vehicle writes (issue #16: a transaction per invocation, and no request per material change).

    An object another delivery committed first becomes a duplicate, its writes dropped; a write a
    newer stored state refuses counts as a stale reading; the commit is then tried again without
    them. Each vehicle's newest write rides in the transaction while there is room (100 items: the
    markers, the writes, the counters); an older write of the same vehicle, or one past the room, is
    written first, by itself, as every write was before.

    Raises what the ledger raises: then none of them is committed, and each is retried (their vehicle
    writes are conditional on (ts, seq), so the retry moves no vehicle backwards).
    """
    fresh = [o for o in outcomes if not o.duplicate]
    if not fresh:
        return
    carried, superseded, overflow = _carried_writes(fresh)
    # A vehicle's older writes go first, oldest first (an OTA report's whole item, then the update
    # that keeps its status), each by itself; they are rare: two objects of a batch changed it.
    for outcome, write in sorted(superseded, key=lambda pair: _stamp(pair[1])):
        outcome.counters.update(write_now([write], ports.vehicles))
    for outcome in fresh:
        alone = [w for o, w in overflow if o is outcome]
        if alone:
            outcome.counters.update(write_now(alone, ports.vehicles))
    if len(fresh) + 1 > MAX_COMMIT_ITEMS:  # more objects than one transaction holds (no writes carried)
        already = {
            ref.identity for ref in ports.ledger.commit_many([(o.ref, o.counters) for o in fresh], now)
        }
        for outcome in fresh:
            if outcome.ref.identity in already:
                _lost_to_another_delivery(outcome, ports, now)
        return
    refused: list[tuple[IngestOutcome, VehicleWrite]] = []
    while fresh:
        commits = [(o.ref, _with_writes(o, carried, refused)) for o in fresh]
        items = ports.vehicles.commit_items([w for _, w in carried])
        try:
            lost, stale = ports.ledger.commit_carrying(commits, items, now)
        except Exception:  # nothing written: the retry must write the flagged changes, not defer them
            ports.hinted_writes.forget([w.state.vin for _, w in carried if not w.whole])
            raise
        if not lost and not stale:
            for outcome, counters in zip(fresh, commits, strict=True):
                outcome.counters = counters[1]
            break
        refused += [carried[i] for i in sorted(stale)]
        for i, received in lost.items():
            _lost_to_another_delivery(fresh[i], ports, now, received)
        gone = [fresh[i] for i in lost]
        fresh = [o for o in fresh if all(o is not g for g in gone)]
        carried = [
            (o, w) for i, (o, w) in enumerate(carried) if i not in stale and all(o is not g for g in gone)
        ]
    ports.vehicles.committed([w for _, w in carried] if fresh else [], [w for _, w in refused])


_Writes = list[tuple["IngestOutcome", "VehicleWrite"]]


def _carried_writes(fresh: list[IngestOutcome]) -> tuple[_Writes, _Writes, _Writes]:
    """(carried, superseded, overflow): each vehicle's newest write, to ride in the commit while there
    is room; the older writes of a vehicle two objects changed (a transaction takes one operation an
    item); the newest writes past the room. The last two are written before the commit."""
    newest: dict[str, tuple[IngestOutcome, VehicleWrite]] = {}
    superseded: _Writes = []
    for outcome in fresh:
        for write in outcome.writes:
            current = newest.get(write.state.vin)
            if current is None or _stamp(write) > _stamp(current[1]):
                newest[write.state.vin] = (outcome, write)
                if current is not None:
                    superseded.append(current)
            else:
                superseded.append((outcome, write))
    room = max(0, MAX_COMMIT_ITEMS - len(fresh) - 1)
    carried = list(newest.values())
    return carried[:room], superseded, carried[room:]


def _stamp(write: VehicleWrite) -> tuple[int, int]:
    return write.state.last_ts_ms, write.state.last_seq


def _with_writes(
    outcome: IngestOutcome,
    carried: list[tuple[IngestOutcome, VehicleWrite]],
    refused: list[tuple[IngestOutcome, VehicleWrite]],
) -> Counter[str]:
    """The outcome's counters as this commit adds them: its carried writes written, refused stale."""
    counters = Counter(outcome.counters)
    counters["vehicle_writes"] += sum(1 for o, _ in carried if o is outcome)
    counters["stale_vehicle_readings"] += sum(1 for o, _ in refused if o is outcome)
    return Counter({k: v for k, v in counters.items() if v})
