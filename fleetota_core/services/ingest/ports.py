"""What the ingest use case needs from the outside world; AWS adapters and in-memory fakes implement it."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence
    from datetime import datetime

    from fleetota_core.domain.enrichment import StoredState, VehicleState
    from fleetota_core.domain.registry_changes import RegistryChanges
    from fleetota_core.domain.telemetry import TelemetryRecord
    from fleetota_core.domain.vehicle_identity import RegisteredVehicle
    from fleetota_core.services.ingest.decode import QuarantinedLine


@dataclass(frozen=True)
class ObjectRef:
    """One telemetry object as an S3 notification names it (key already percent-decoded)."""

    bucket: str
    key: str
    etag: str = ""
    sequencer: str = ""
    size: int | None = None
    event_time: str = ""  # when S3 created the object (ISO 8601), for the pipeline's own latency

    @property
    def version_tag(self) -> str:
        # Same key, new content (a re-upload) is a new object; the same event twice is not.
        return self.etag or self.sequencer or "-"

    @property
    def identity(self) -> tuple[str, str, str]:
        """What makes two deliveries one object: its bucket, key and content (``version_tag``)."""
        return self.bucket, self.key, self.version_tag


class TelemetryObjects(Protocol):
    def get(self, ref: ObjectRef) -> bytes:
        """The object's bytes; raises ``ResourceNotFoundError`` when it no longer exists."""
        ...


class Quarantine(Protocol):
    def put_lines(self, ref: ObjectRef, lines: list[QuarantinedLine], now: datetime) -> str: ...

    def put_object_reference(
        self,
        ref: ObjectRef,
        reason: str,
        detail: str,
        now: datetime,
        counts: Mapping[str, int] | None = None,
    ) -> str:
        """Quarantine the whole object by reference: its key, the reason and how far reading got
        (``counts``: bytes, lines, gzip members), never a copy of its content."""
        ...


@dataclass(frozen=True)
class VehicleWrite:
    """A material change to write, conditional on (ts, seq). ``whole``: the item is put whole (an OTA
    report, or a reading judged against the stored state); else updated, keeping the stored OTA status."""

    state: VehicleState
    whole: bool


class VehicleStates(Protocol):
    def get_many(self, vins: list[str]) -> dict[str, StoredState]: ...

    def put_many(self, states: list[VehicleState]) -> tuple[int, int]:
        """Conditionally write each state unless a newer one is stored; (written, lost to newer)."""
        ...

    def update_many(self, states: list[VehicleState]) -> tuple[int, int]:
        """As ``put_many``, without a read before: a state without an OTA status leaves the OTA status
        (and campaign) the stored item holds as it is; (written, lost to newer)."""
        ...

    def commit_items(self, writes: Sequence[VehicleWrite]) -> Sequence[object]:
        """``writes`` as items of a ledger commit (``Ledger.commit_carrying``), in the same order:
        written with it, or not at all."""
        ...

    def committed(self, written: Sequence[VehicleWrite], refused: Sequence[VehicleWrite]) -> None:
        """Told what a ledger commit wrote, and which writes it found older than the stored state."""
        ...


class VehicleRegistry(Protocol):
    def get_many(self, vins: Iterable[str]) -> dict[str, RegisteredVehicle]:
        """The registered vehicles among ``vins``; an unprovisioned VIN is simply absent."""
        ...

    def refresh_many(self, vins: Iterable[str]) -> dict[str, RegisteredVehicle]:
        """As ``get_many``, read from the table itself (past any cache), e.g. after a key rotation."""
        ...


class RegistryChangeFeed(Protocol):
    def read(self) -> RegistryChanges:
        """The registry change feed: which existing registrations changed lately (one small read)."""
        ...


class Ledger(Protocol):
    def processed_records(self, ref: ObjectRef) -> int | None:
        """How many records an earlier delivery of ``ref`` received, or None if it was never processed."""
        ...

    def processed_many(self, refs: Sequence[ObjectRef]) -> Mapping[tuple[str, str, str], int]:
        """``processed_records`` for the processed ones of many objects in one read, by ``identity``."""
        ...

    def commit_many(
        self, commits: Sequence[tuple[ObjectRef, Mapping[str, int]]], now: datetime
    ) -> list[ObjectRef]:
        """Mark each object processed and add their counters, atomically (one write per 99 objects);
        returns the refs that were marked already, whose counters were left out."""
        ...

    def commit_carrying(
        self,
        commits: Sequence[tuple[ObjectRef, Mapping[str, int]]],
        items: Sequence[object],
        now: datetime,
    ) -> tuple[Mapping[int, int], set[int]]:
        """``commit_many`` and ``items`` (``VehicleStates.commit_items``) in one transaction: all or
        nothing. Returns what made it refuse: the objects marked already (index -> the records their
        earlier delivery received) and the indexes of the items whose condition failed; both empty
        when it committed. At most ``MAX_COMMIT_ITEMS`` - 1 objects and items together (one more for
        the counters)."""
        ...

    def count_duplicate(self, ref: ObjectRef, records: int, now: datetime) -> None: ...


# DynamoDB's TransactWriteItems limit: a commit's markers, carried writes and counters update.
MAX_COMMIT_ITEMS = 100


# Hands OTA reports (records whose ``ota`` is set, in (vin, ts, seq) order) to the deployments.
OtaReportSink = Callable[[list["TelemetryRecord"]], Mapping[str, int]]
