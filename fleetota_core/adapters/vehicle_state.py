"""Latest vehicle state in the vehicles table (pk ``vin``), written only forwards in (ts, seq) order."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from fleetota_core.adapters.aws_errors import conditional_write, translate
from fleetota_core.domain.bounds import MAX_SAFE_INT
from fleetota_core.domain.enrichment import StoredState, not_after_ms
from fleetota_core.domain.vehicle_health import ATTRIBUTES as HEALTH_ATTRIBUTES
from fleetota_core.errors import TransientAWSError

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from fleetota_core.domain.enrichment import VehicleState
    from fleetota_core.services.ingest.ports import VehicleWrite

BATCH_GET_LIMIT = 100
WRITE_THREADS = 8
# Never move a vehicle backwards: only a newer (ts, seq) may overwrite the stored state. A stored
# last_ts_ms after :not_after (the clock plus a second) was written before readings were bounded; it
# must not freeze the vehicle, so any reading replaces it (domain.enrichment.is_newer, same rule).
NEWER_CONDITION = (
    "attribute_not_exists(vin) OR attribute_not_exists(last_ts_ms) OR last_ts_ms < :ts "
    "OR (last_ts_ms = :ts AND last_seq < :seq) OR last_ts_ms > :not_after"
)
_MATERIAL_FIELDS = (
    "last_ts_ms",
    "last_seq",
    "drive_state",
    "online",
    "firmware_version",
    "battery_category",
    "charging",
    "needs_update",
    "region",
    "lat",
    "lon",
    "ota_status",
    "ota_campaign_id",
    "health_events",
)

_PROJECTION = ("vin", *_MATERIAL_FIELDS)


def _newer_values(state: VehicleState, now: datetime) -> dict[str, Any]:
    """The values of ``NEWER_CONDITION`` for ``state``."""
    return {
        ":ts": to_attr(state.last_ts_ms),
        ":seq": to_attr(state.last_seq),
        ":not_after": to_attr(not_after_ms(now)),
    }


def iso_utc(ts: datetime) -> str:
    """Fixed-width UTC ISO 8601, so stored timestamps also compare correctly as strings."""
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def to_attr(value: Any) -> dict[str, Any]:
    if value is None:
        return {"NULL": True}
    if isinstance(value, bool):
        return {"BOOL": value}
    if isinstance(value, int) and abs(value) > MAX_SAFE_INT:
        # DynamoDB keeps 38 digits and boto3's readers trap anything they would round; moto takes it
        # all. Readings are bounded before they get here (TelemetryRecord.seq), so this is a bug.
        raise ValueError(f"{value} is beyond 2^53 - 1, the largest integer a reading may carry")
    if isinstance(value, int | float):
        return {"N": repr(value) if isinstance(value, float) else str(value)}
    return {"S": str(value)}


def from_attr(attr: dict[str, Any]) -> Any:
    (kind, value), *_ = attr.items()
    if kind == "N":
        return float(value) if any(c in value for c in ".eE") else int(value)
    if kind == "NULL":
        return None
    return value


def item_values(item: dict[str, Any]) -> dict[str, Any]:
    return {name: from_attr(attr) for name, attr in item.items()}


def state_attributes(state: VehicleState, now: datetime) -> dict[str, Any]:
    values = {
        "make": state.make,
        "model": state.model,
        "model_year": state.model_year,
        "hw_rev": state.hw_rev,
        "firmware_version": state.firmware_version,
        "last_ts": iso_utc(state.last_ts),
        "last_ts_ms": state.last_ts_ms,
        "last_seq": state.last_seq,
        "lat": state.lat,
        "lon": state.lon,
        "speed_kph": state.speed_kph,
        "soc_pct": state.soc_pct,
        "battery_category": state.battery_category,
        "charging": state.charging,
        "drive_state": state.drive_state,
        "network": state.network,
        "signal_dbm": state.signal_dbm,
        "odometer_km": state.odometer_km,
        "online": state.online,
        "region": state.region,
        "metro": state.metro,
        "timezone": state.timezone,
        "needs_update": state.needs_update,
        "newest_compatible": state.newest_compatible,
        "updated_at": iso_utc(now),
    }
    if state.health is not None:
        values.update(zip(HEALTH_ATTRIBUTES, state.health.values(), strict=True))
        values["health_events"] = state.health.events
    if state.ota_status is not None:
        # Carried forward by the ingest service, so a later plain reading keeps the last OTA status.
        values["ota_status"] = state.ota_status
        values["ota_campaign_id"] = state.ota_campaign_id
    return values


class DynamoVehicleStates:
    """Accepts an injected DynamoDB client."""

    def __init__(self, dynamodb: Any, table: str, clock: Any = None) -> None:
        self.dynamodb = dynamodb
        self.table = table
        self.clock = clock or (lambda: datetime.now(UTC))

    def get_many(self, vins: list[str]) -> dict[str, StoredState]:
        stored: dict[str, StoredState] = {}
        for start in range(0, len(vins), BATCH_GET_LIMIT):
            keys = [{"vin": {"S": vin}} for vin in vins[start : start + BATCH_GET_LIMIT]]
            for item in self._batch_get(keys):
                values = item_values(item)
                if "last_ts_ms" not in values:
                    continue
                stored[values["vin"]] = StoredState(
                    last_ts_ms=int(values["last_ts_ms"]),
                    last_seq=int(values.get("last_seq", -1)),
                    drive_state=values.get("drive_state"),
                    online=values.get("online"),
                    firmware_version=values.get("firmware_version"),
                    battery_category=values.get("battery_category"),
                    charging=values.get("charging"),
                    needs_update=values.get("needs_update"),
                    region=values.get("region"),
                    lat=values.get("lat"),
                    lon=values.get("lon"),
                    ota_status=values.get("ota_status"),
                    ota_campaign_id=values.get("ota_campaign_id"),
                    health_events=values.get("health_events"),
                )
        return stored

    def _batch_get(self, keys: list[dict[str, Any]]) -> list[dict[str, Any]]:
        request = {
            self.table: {
                "Keys": keys,
                # Names for all: several (online, region ...) are DynamoDB reserved words.
                "ProjectionExpression": ", ".join(f"#p{i}" for i in range(len(_PROJECTION))),
                "ExpressionAttributeNames": {f"#p{i}": name for i, name in enumerate(_PROJECTION)},
            }
        }
        items: list[dict[str, Any]] = []
        for attempt in range(6):
            try:
                response = self.dynamodb.batch_get_item(RequestItems=request)
            except (ClientError, BotoCoreError) as exc:
                raise translate(exc, f"reading vehicle states from {self.table}") from exc
            items.extend(response.get("Responses", {}).get(self.table, []))
            request = response.get("UnprocessedKeys") or {}
            if not request:
                return items
            time.sleep(0.05 * 2**attempt)
        raise TransientAWSError(f"reading vehicle states from {self.table}: keys still unprocessed")

    def _each(
        self, write: Callable[[VehicleState, datetime], bool], states: list[VehicleState]
    ) -> tuple[int, int]:
        """``write`` each state (``WRITE_THREADS`` at a time); (written, lost to a newer stored state)."""
        now = self.clock()
        if len(states) <= WRITE_THREADS:
            results = [write(state, now) for state in states]
        else:
            with ThreadPoolExecutor(WRITE_THREADS) as pool:
                results = list(pool.map(lambda s: write(s, now), states))
        written = sum(results)
        return written, len(results) - written

    def put_many(self, states: list[VehicleState]) -> tuple[int, int]:
        """``put`` each state; (written, lost to a newer stored state)."""
        return self._each(self.put, states)

    def put(self, state: VehicleState, now: datetime) -> bool:
        """Write ``state`` unless the table holds a newer reading; True if written.

        A conditional PutItem of the whole item: the pipeline owns vehicle items, and it is several
        times cheaper than a 26-clause UpdateItem (for moto's parser as for the request size).
        """
        try:
            return conditional_write(self.dynamodb.put_item, **self._put_request(state, now))
        except (ClientError, BotoCoreError) as exc:
            raise translate(exc, f"writing vehicle {state.vin}") from exc

    def _put_request(self, state: VehicleState, now: datetime) -> dict[str, Any]:
        item = {"vin": {"S": state.vin}}
        item.update((name, to_attr(value)) for name, value in state_attributes(state, now).items())
        return {
            "TableName": self.table,
            "Item": item,
            "ConditionExpression": NEWER_CONDITION,
            "ExpressionAttributeValues": _newer_values(state, now),
        }

    def update_many(self, states: list[VehicleState]) -> tuple[int, int]:
        """``update`` each state; (written, lost to a newer stored state)."""
        return self._each(self.update, states)

    def update(self, state: VehicleState, now: datetime) -> bool:
        """Write ``state`` unless the table holds a newer reading, without reading it first; True if written.

        A conditional UpdateItem (same condition as :meth:`put`) that sets the reading's attributes and
        leaves ``ota_status`` and ``ota_campaign_id`` as stored when the state has none, so a vehicle
        that reports by exception keeps its last OTA status without the read ``put`` needs. Health
        counters the reading lacks are removed, as ``put``'s whole item would drop them.
        """
        try:
            return conditional_write(self.dynamodb.update_item, **self._update_request(state, now))
        except (ClientError, BotoCoreError) as exc:
            raise translate(exc, f"writing vehicle {state.vin}") from exc

    def _update_request(self, state: VehicleState, now: datetime) -> dict[str, Any]:
        values = state_attributes(state, now)
        names = {f"#a{i}": name for i, name in enumerate(values)}
        attrs = {f":a{i}": to_attr(value) for i, value in enumerate(values.values())}
        expression = "SET " + ", ".join(f"#a{i} = :a{i}" for i in range(len(values)))
        if state.health is None:
            gone = [name for name in (*HEALTH_ATTRIBUTES, "health_events") if name not in values]
            names.update({f"#r{i}": name for i, name in enumerate(gone)})
            expression += " REMOVE " + ", ".join(f"#r{i}" for i in range(len(gone)))
        return {
            "TableName": self.table,
            "Key": {"vin": {"S": state.vin}},
            "UpdateExpression": expression,
            "ConditionExpression": NEWER_CONDITION,
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": {**attrs, **_newer_values(state, now)},
        }

    def commit_items(self, writes: Sequence[VehicleWrite]) -> list[dict[str, Any]]:
        """Each write as a TransactWriteItems item: the same conditional Put or Update as :meth:`put`
        and :meth:`update`, for the ledger's commit to carry (``DynamoLedger.commit_carrying``)."""
        now = self.clock()
        return [
            {"Put": self._put_request(w.state, now)}
            if w.whole
            else {"Update": self._update_request(w.state, now)}
            for w in writes
        ]

    def committed(self, written: Sequence[VehicleWrite], refused: Sequence[VehicleWrite]) -> None:
        """Nothing kept here (``CachedVehicleStates`` keeps what a commit wrote)."""

    def get(self, vin: str) -> dict[str, Any] | None:
        """One vehicle's stored item as plain values, or None."""
        try:
            item = self.dynamodb.get_item(TableName=self.table, Key={"vin": {"S": vin}}).get("Item")
        except (ClientError, BotoCoreError) as exc:
            raise translate(exc, f"reading vehicle {vin}") from exc
        return None if item is None else item_values(item)
