"""The fleet's change feed for continuous campaigns: the fleet snapshot's deltas, read by key order.

The telemetry processor writes, per invocation, the newest reading of each vehicle it heard from as
one delta object (``snapshots/fleet/deltas/<epoch ms>-<random>.ndjson.gz``, see
``fleet_snapshot.py``): a vehicle's first reading after it was provisioned, every firmware change. A
token is a
delta key; the feed lists the deltas after it that have settled (written at least ``settle`` ago, as
the snapshot merge does, so a slow writer's older key is not skipped). Deltas are deleted
``retention`` after they were written; a token older than that may have lost changes, so
:meth:`since` answers None and the caller reads :meth:`whole_fleet` (the latest snapshot, or the
vehicles table before the first snapshot) once.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from fleetota_core.adapters.fleet_shard_rows import fleet_rows_source
from fleetota_core.adapters.fleet_snapshot import (
    DELTA_PREFIX,
    SnapshotFormatError,
    list_deltas,
    read_document,
    scan_vehicles,
    time_bound_key,
)
from fleetota_core.domain.enrolment import ChangedVehicle, FleetChangeBatch

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

logger = logging.getLogger(__name__)
# Deletion runs on another clock than the reader's: keep this much clear of the retention edge.
RETENTION_MARGIN = timedelta(minutes=5)
_MS_DIGITS = 13


def token_time(token: str) -> datetime | None:
    """When the delta (or time bound) ``token`` was written; None for a token that is not one."""
    digits = token[len(DELTA_PREFIX) : len(DELTA_PREFIX) + _MS_DIGITS]
    if not token.startswith(DELTA_PREFIX) or len(digits) != _MS_DIGITS or not digits.isdigit():
        return None
    return datetime.fromtimestamp(int(digits) / 1000, tz=UTC)


def _changes(rows: Iterable[tuple[str, dict[str, Any]]]) -> list[ChangedVehicle]:
    def text(value: Any) -> str | None:
        return value if isinstance(value, str) else None

    return [
        ChangedVehicle(
            vin,
            text(r.get("model")),
            text(r.get("hw_rev")),
            text(r.get("region")),
            text(r.get("firmware_version")),
        )
        for vin, r in rows
    ]


class SnapshotDeltaFeed:
    """Accepts injected S3 and DynamoDB clients; ``bucket`` is the telemetry bucket."""

    def __init__(
        self,
        s3: Any,
        bucket: str,
        settle: timedelta,
        retention: timedelta,
        dynamodb: Any = None,
        vehicles_table: str = "",
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.s3 = s3
        self.bucket = bucket
        self.settle = settle
        self.retention = retention
        self.dynamodb = dynamodb
        self.vehicles_table = vehicles_table
        # The processor stamps deltas with the wall clock, so the feed reads by the wall clock too.
        self.clock = clock or (lambda: datetime.now(UTC))

    def start(self) -> str:
        # A state stored just before now may carry a later delta key; reading a little early is harmless.
        return time_bound_key(self.clock() - self.settle)

    def since(self, token: str, limit: int) -> list[FleetChangeBatch] | None:
        now = self.clock()
        written = token_time(token)
        if written is None or written < now - self.retention + RETENTION_MARGIN:
            return None
        keys = list_deltas(self.s3, self.bucket, after=token, before=time_bound_key(now - self.settle))
        batches = []
        for key in keys[:limit]:
            try:
                delta = read_document(self.s3, self.bucket, key)
                rows = delta.rows() if delta is not None else {}
            except SnapshotFormatError as exc:
                # Its vehicles come back with their next reading, as for a delta never written.
                logger.warning("%s; skipped", exc)
                rows = {}
            batches.append(FleetChangeBatch(key, _changes(rows.items())))
        return batches

    def whole_fleet(self) -> FleetChangeBatch:
        try:
            snapshot = fleet_rows_source(self.s3, self.bucket)
            if snapshot is not None and snapshot.index.high_water:
                # A shard's rows at a time: the changes are small, the rows are not.
                changes = [c for rows in snapshot.shard_rows() for c in _changes(rows.items())]
                return FleetChangeBatch(snapshot.index.high_water, changes)
        except SnapshotFormatError as exc:
            logger.warning("%s; reading the vehicles table instead", exc)
        token = self.start()
        if self.dynamodb is None:
            return FleetChangeBatch(token, [])
        items = scan_vehicles(self.dynamodb, self.vehicles_table)
        return FleetChangeBatch(token, _changes((str(i.get("vin")), i) for i in items if i.get("vin")))
