"""Wires the ingest use case to AWS for the telemetry processor, and sums a batch into metrics."""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from fleetota_core.adapters.clients import client_factory
from fleetota_core.adapters.firmware_store import FirmwareStore
from fleetota_core.adapters.ledger import DynamoLedger
from fleetota_core.adapters.registry_changes import RegistryChangeFeed
from fleetota_core.adapters.resources import resolve_resources
from fleetota_core.adapters.telemetry_objects import S3Quarantine, S3TelemetryObjects
from fleetota_core.adapters.vehicle_registry import VehicleRegistry
from fleetota_core.adapters.vehicle_state import DynamoVehicleStates
from fleetota_core.composition import campaign_ports
from fleetota_core.domain.enrichment import ReleaseCatalog, ReleaseSummary
from fleetota_core.errors import FleetOTAError
from fleetota_core.services.campaigns.reports import apply_ota_reports
from fleetota_core.services.ingest.events import refs_from_sqs_body
from fleetota_core.services.ingest.fleet_health import write_snapshot_delta
from fleetota_core.services.ingest.registry_cache import RegistryCache
from fleetota_core.services.ingest.state_cache import DEFAULT_TTL_S, CachedVehicleStates
from fleetota_core.services.ingest.telemetry_object import (
    IngestOutcome,
    IngestPorts,
    commit_outcomes,
    process_object,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping

    from fleetota_core.adapters.clients import ClientFactory
    from fleetota_core.adapters.resources import Resources
    from fleetota_core.domain.enrichment import VehicleState
    from fleetota_core.domain.firmware import FirmwareRelease
    from fleetota_core.domain.telemetry import TelemetryRecord
    from fleetota_core.services.ingest.ports import ObjectRef
    from fleetota_core.settings import Settings

logger = logging.getLogger(__name__)
# New releases show up in ``needs_update`` within this long, without a firmware-bucket read per object.
CATALOG_TTL_SECONDS = 60.0
# Objects of one SQS batch processed at once; each waits mostly on S3 and DynamoDB round trips.
OBJECT_THREADS = 4
# moto copies every table for each TransactWriteItems and answers 500 when another thread writes
# meanwhile, so against the local stack the objects of a batch take turns.
LOCAL_OBJECT_THREADS = 1
# The local stack runs one processor, so its cache is never stale (a reset is caught by the generation).
SINGLE_PROCESSOR_CACHE_TTL_S = 3600.0
OTA_COUNTER_NAMES = {"illegal": "ota_illegal_transitions", "applied": "ota_transitions_applied"}


class CachedCatalog:
    """The release catalog, reloaded at most once per TTL (a warm Lambda keeps it between batches)."""

    def __init__(self, load: Callable[[], ReleaseCatalog], ttl: float = CATALOG_TTL_SECONDS) -> None:
        self._load = load
        self._ttl = ttl
        self._catalog: ReleaseCatalog | None = None
        self._loaded_at = 0.0
        self._lock = threading.Lock()

    def __call__(self) -> ReleaseCatalog:
        with self._lock:
            if self._catalog is None or time.monotonic() - self._loaded_at > self._ttl:
                self._catalog = self._load()
                self._loaded_at = time.monotonic()
            return self._catalog


class FirmwareCatalog:
    """Loads the release catalog from the firmware bucket: each load lists the manifests and reads
    only the new or changed ones (by ETag), so a warm processor's reload is one ListObjectsV2 and the
    telemetry objects stay the only GetObject of the hot path (issue #16)."""

    def __init__(self, store: FirmwareStore) -> None:
        self.store = store
        self._manifests: dict[str, tuple[str, FirmwareRelease]] = {}

    def __call__(self) -> ReleaseCatalog:
        self._manifests = self.store.release_manifests(self._manifests)
        return ReleaseCatalog(
            ReleaseSummary(r.version, frozenset(r.manifest.models), frozenset(r.manifest.hw_revs))
            for _, r in self._manifests.values()
        )


def deployment_sink(clients: ClientFactory, resources: Resources) -> Callable[[list[TelemetryRecord]], Any]:
    ports = campaign_ports(clients, resources)

    def apply(reports: list[TelemetryRecord]) -> Mapping[str, int]:
        counts = apply_ota_reports(reports, ports).as_dict()
        return {OTA_COUNTER_NAMES.get(name, f"ota_{name}"): value for name, value in counts.items()}

    return apply


class TelemetryPipeline:
    """One per process: ports plus a cached release catalog; ``outcomes`` collects one invocation."""

    def __init__(
        self,
        ports: IngestPorts,
        catalog: Callable[[], ReleaseCatalog],
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        generation: Callable[[], str] | None = None,
        snapshot_delta: Callable[[list[VehicleState]], Any] | None = None,
        object_threads: int = OBJECT_THREADS,
    ) -> None:
        self.ports = ports
        self.catalog = catalog
        self.clock = clock
        self.outcomes: list[IngestOutcome] = []
        self._generation = generation
        self._seen_generation: str | None = None
        self._snapshot_delta = snapshot_delta
        self._pool = ThreadPoolExecutor(object_threads, thread_name_prefix="telemetry-object")
        self._results: dict[str, Exception | None] = {}
        self._outcomes_lock = threading.Lock()

    def begin_batch(self) -> None:
        """Once per invocation: drop cached vehicle states if the stack's data was wiped since."""
        self.outcomes = []
        if self._generation is None:
            return
        current = self._generation()
        if current != self._seen_generation:
            # The stack's data was wiped: nothing cached about its vehicles holds any more.
            if isinstance(self.ports.vehicles, CachedVehicleStates):
                self.ports.vehicles.clear()
            if isinstance(self.ports.registry, RegistryCache):
                self.ports.registry.clear()
            self.ports.hinted_writes.clear()
        self._seen_generation = current

    @classmethod
    def for_stack(
        cls,
        clients: ClientFactory,
        resources: Resources,
        cache_ttl: float = DEFAULT_TTL_S,
        object_threads: int = OBJECT_THREADS,
        watch_generation: bool = True,
    ) -> TelemetryPipeline:
        """The pipeline on the real adapters. ``cache_ttl``: how long a stored vehicle state may be
        reused; with one processor (the local stack) nothing else writes, so it can be long.
        ``watch_generation``: read the stack's generation once per invocation, so caches notice a
        ``local reset``; AWS has no reset, so there it is off and saves a GetItem per invocation."""
        ledger = DynamoLedger(clients.dynamodb, resources.ledger_table)
        ports = IngestPorts(
            objects=S3TelemetryObjects(clients.s3),
            quarantine=S3Quarantine(clients.s3, resources.telemetry_bucket),
            vehicles=CachedVehicleStates(
                DynamoVehicleStates(clients.dynamodb, resources.vehicles_table), ttl=cache_ttl
            ),
            ledger=ledger,
            ota_sink=deployment_sink(clients, resources),
            # Registry answers kept a day; the change feed (in the ledger) brings changes within ~10 s.
            registry=RegistryCache(
                VehicleRegistry(clients.dynamodb, resources.registry_table),
                RegistryChangeFeed(clients.dynamodb, resources.ledger_table),
            ),
        )
        catalog = CachedCatalog(FirmwareCatalog(FirmwareStore(clients.s3, resources.firmware_bucket)))
        return cls(
            ports,
            catalog,
            generation=ledger.generation if watch_generation else None,
            snapshot_delta=lambda states: write_snapshot_delta(clients, resources, states),
            object_threads=object_threads,
        )

    def ingest(self, refs: Iterable[ObjectRef]) -> list[IngestOutcome]:
        """Process and commit ``refs`` (a direct S3 event); raises if any of them failed."""
        refs = list(refs)
        now = self.clock()
        earlier = self.ports.ledger.processed_many(refs)
        done = self._process(refs, earlier, set(), now)
        commit_outcomes(done, self.ports, now)
        with self._outcomes_lock:
            self.outcomes.extend(done)
        return done

    def _process(
        self,
        refs: list[ObjectRef],
        earlier: Mapping[tuple[str, str, str], int],
        claimed: set[tuple[str, str, str]],
        now: datetime,
    ) -> list[IngestOutcome]:
        catalog = self.catalog()
        done = []
        for ref in refs:
            known = earlier.get(ref.identity)
            with self._outcomes_lock:
                if known is None and ref.identity in claimed:
                    known = 0  # delivered twice in this invocation: the other delivery processes it
                claimed.add(ref.identity)
            done.append(process_object(ref, self.ports, catalog, now, known))
        return done

    def process_sqs_batch(self, records: list[dict[str, Any]]) -> None:
        """Process every message of the batch, then commit them all in one ledger write.

        The messages run on a few threads (objects wait on S3 and DynamoDB, not CPU). A message SQS
        delivers again (``ApproximateReceiveCount`` over 1: an invocation failed or timed out, maybe
        after its commit) is looked up first, in one consistent read, so an object an earlier
        delivery committed costs no work. A first delivery is not (issue #16: a ledger read per
        invocation saved); if S3 sent its event twice, the second object's commit finds the marker
        and it counts as a duplicate, as when two deliveries run at once. :meth:`finish_sqs_message` then
        hands each message's result (or exception) to the batch processor, so partial batch
        responses work as if the items ran one by one. A message fails alone; a failed commit fails
        every message it held, and SQS retries them (their vehicle writes are conditional and their
        OTA transitions versioned, so the retry repeats nothing).
        """
        self._results = {}
        now = self.clock()
        parsed: dict[str, list[ObjectRef]] = {}
        resent: set[str] = set()
        for record in records:
            try:
                parsed[record["messageId"]] = refs_from_sqs_body(record["body"])
            except Exception as exc:  # this item fails; the others go on
                self._results[record["messageId"]] = exc
            if not first_delivery(record):
                resent.add(record["messageId"])
        redelivered = [r for message_id, refs in parsed.items() if message_id in resent for r in refs]
        try:
            earlier = self.ports.ledger.processed_many(redelivered) if redelivered else {}
        except Exception as exc:  # no item can go on without it: each is retried
            self._results.update(dict.fromkeys(parsed, exc))
            return
        claimed: set[tuple[str, str, str]] = set()
        futures = {
            message_id: self._pool.submit(self._process, refs, earlier, claimed, now)
            for message_id, refs in parsed.items()
        }
        processed: dict[str, list[IngestOutcome]] = {}
        for message_id, future in futures.items():
            try:
                processed[message_id] = future.result()
            except Exception as exc:  # handed to the batch processor: this item fails and is retried
                self._results[message_id] = exc
        try:
            commit_outcomes([o for done in processed.values() for o in done], self.ports, now)
        except Exception as exc:  # nothing of this batch is committed: every processed item is retried
            self._results.update(dict.fromkeys(processed, exc))
            return
        with self._outcomes_lock:
            for message_id, done in processed.items():
                self._results[message_id] = None
                self.outcomes.extend(done)

    def finish_sqs_message(self, message_id: str) -> None:
        """Raise what made this message fail, so the item fails and SQS retries it (finally to the DLQ)."""
        error = self._results.pop(message_id, None)
        if error is not None:
            # Logged so the reason is on record.
            logger.warning("telemetry message %s failed, left for retry: %r", message_id, error)
            raise error

    def take_outcomes(self) -> list[IngestOutcome]:
        with self._outcomes_lock:
            outcomes, self.outcomes = self.outcomes, []
        return outcomes

    def write_snapshot_delta(self, outcomes: list[IngestOutcome]) -> bool:
        """Hand this invocation's written vehicle states to the fleet snapshot; False if that failed.

        Best effort: the items are already processed, and the snapshot's periodic full rebuild heals
        a lost delta, so a failure is logged and counted rather than retried.
        """
        states = [state for outcome in outcomes for state in outcome.states]
        if self._snapshot_delta is None or not states:
            return True
        try:
            self._snapshot_delta(states)
        except FleetOTAError as exc:
            logger.warning("fleet snapshot delta not written (the next full rebuild covers it): %s", exc)
            return False
        return True


def first_delivery(record: Mapping[str, Any]) -> bool:
    """Whether SQS hands this message over for the first time (``ApproximateReceiveCount`` 1); a
    record without a readable count is taken as a redelivery, to be looked up in the ledger."""
    count = str((record.get("attributes") or {}).get("ApproximateReceiveCount", ""))
    return count.strip() == "1"


def batch_metrics(
    outcomes: Iterable[IngestOutcome], snapshot_delta_failed: bool = False
) -> list[tuple[str, str, float]]:
    """(name, unit, value) for the ``Telemetry`` namespace, dimensionless, one set per batch.

    ``ProcessingLatency`` gets one value per object: object created (S3 event time) to processed, so
    the alarm's Average is the mean over objects. ``RecordLag`` is the mean of record time to
    processed per object (it includes the vehicle's own batching). Every invalid record is
    quarantined, so Invalid = Quarantined records.
    """
    outcomes = list(outcomes)
    total: Counter[str] = Counter()
    for outcome in outcomes:
        total.update(outcome.counters)
    metrics: list[tuple[str, str, float]] = [
        ("DataPoints", "Count", total["stored"]),
        ("InvalidRecords", "Count", total["quarantined"]),
        ("QuarantinedRecords", "Count", total["quarantined"]),
        ("QuarantinedObjects", "Count", total["objects_quarantined"]),
        ("DuplicateObjects", "Count", sum(1 for o in outcomes if o.duplicate)),
        ("OtaIllegalTransitions", "Count", total["ota_illegal_transitions"]),
        ("OtaReportsRejected", "Count", total["ota_report_rejected"]),
        ("UnknownVehicleRecords", "Count", total["quarantined__unknown_vehicle"]),
        ("IdentityMismatches", "Count", total["identity_mismatch"]),
        ("VehicleStateWrites", "Count", total["vehicle_writes"]),
        ("SnapshotDeltaFailures", "Count", int(snapshot_delta_failed)),
    ]
    for outcome in outcomes:
        # Object created -> processed, as the latency alarm defines it; mean record lag as a fallback.
        if outcome.object_lag_ms is not None:
            metrics.append(("ProcessingLatency", "Milliseconds", outcome.object_lag_ms))
        elif outcome.lag_ms:
            metrics.append(("ProcessingLatency", "Milliseconds", sum(outcome.lag_ms) / len(outcome.lag_ms)))
    metrics += [("RecordLag", "Milliseconds", sum(o.lag_ms) / len(o.lag_ms)) for o in outcomes if o.lag_ms]
    return metrics


_pipelines: dict[tuple[str, ...], TelemetryPipeline] = {}


def telemetry_pipeline(settings: Settings) -> TelemetryPipeline:
    """The process's pipeline for these settings, built once (a warm Lambda keeps its caches)."""
    clients = client_factory(settings)
    resources = resolve_resources(settings, clients)
    key = (str(settings.endpoint_url), *resources.as_dict().values())
    if key not in _pipelines:
        local = settings.is_local
        _pipelines[key] = TelemetryPipeline.for_stack(
            clients,
            resources,
            cache_ttl=SINGLE_PROCESSOR_CACHE_TTL_S if local else DEFAULT_TTL_S,
            object_threads=LOCAL_OBJECT_THREADS if local else OBJECT_THREADS,
            watch_generation=local,
        )
    return _pipelines[key]
