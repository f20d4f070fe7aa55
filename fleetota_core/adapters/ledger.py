"""The ledger table (pk ``pk``, sk ``sk``): processed-object markers and telemetry counters.

Markers (``pk = object#<bucket>/<key>``, ``sk = <etag>``) make ingest idempotent. Counters live in
16 shard items per hour (``pk = counters#telemetry``, ``sk = <YYYY-MM-DDTHH>#<shard>``, shard from the
object key) and are added with ``ADD`` in the same transaction that writes the marker: once per
object, never per record, never twice. Shards keep concurrent commits from conflicting on one item.
"""

from __future__ import annotations

import random
import threading
import time
import uuid
import zlib
from collections import Counter
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from fleetota_core.adapters.aws_errors import error_code, translate
from fleetota_core.errors import TransientAWSError, ValidationError

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from datetime import datetime

    from fleetota_core.services.ingest.ports import ObjectRef

COUNTERS_PK = "counters#telemetry"
GENERATION_KEY = {"pk": {"S": "stack"}, "sk": {"S": "generation"}}
# Duplicates are only recognised within this window; S3 redeliveries come within minutes.
MARKER_TTL = timedelta(days=7)
COUNTER_TTL = timedelta(days=90)


def marker_key(ref: ObjectRef) -> dict[str, Any]:
    return {"pk": {"S": f"object#{ref.bucket}/{ref.key}"}, "sk": {"S": ref.version_tag}}


def _marker(ref: ObjectRef, counters: Mapping[str, int], now: datetime) -> dict[str, Any]:
    return {
        **marker_key(ref),
        "kind": {"S": "processed_object"},
        "processed_at": {"S": now.isoformat()},
        "received": {"N": str(counters.get("received", 0))},
        "stored": {"N": str(counters.get("stored", 0))},
        "quarantined": {"N": str(counters.get("quarantined", 0))},
        "expires_at": {"N": _epoch(now + MARKER_TTL)},
    }


# Counter items per hour are split in shards: concurrent transactions on one item conflict on AWS.
COUNTER_SHARDS = 16
COMMIT_ATTEMPTS = 4
# TransactWriteItems takes at most 100 items: the markers plus one counters update.
MAX_TRANSACT_ITEMS = 100
MAX_MARKERS_PER_COMMIT = MAX_TRANSACT_ITEMS - 1
BATCH_GET_KEYS = 100
# One commit at a time per process: moto answers HTTP 500 to concurrent TransactWriteItems, and on
# AWS a commit is a few ms, so the threads of one invocation lose nothing by taking turns.
_COMMIT_LOCK = threading.Lock()


def _received(marker: Mapping[str, Any] | None) -> int:
    """The records an existing marker says its delivery received (0 if it was not handed back)."""
    return int((marker or {}).get("received", {}).get("N", "0"))


def counters_key(now: datetime, shard: int = 0) -> dict[str, Any]:
    return {"pk": {"S": COUNTERS_PK}, "sk": {"S": f"{now:%Y-%m-%dT%H}#{shard:02d}"}}


def shard_of(ref: ObjectRef) -> int:
    return zlib.crc32(ref.key.encode()) % COUNTER_SHARDS


def _epoch(ts: datetime) -> str:
    return str(int(ts.timestamp()))


def add_counters_update(counters: Mapping[str, int], now: datetime) -> dict[str, Any]:
    names = {f"#c{i}": name for i, name in enumerate(counters)}
    values = {f":c{i}": {"N": str(int(v))} for i, v in enumerate(counters.values())}
    adds = ", ".join(f"#c{i} :c{i}" for i in range(len(counters)))
    return {
        "UpdateExpression": f"SET expires_at = :exp ADD {adds}",
        "ExpressionAttributeNames": names,
        "ExpressionAttributeValues": {**values, ":exp": {"N": _epoch(now + COUNTER_TTL)}},
    }


class DynamoLedger:
    """Accepts an injected DynamoDB client."""

    def __init__(self, dynamodb: Any, table: str) -> None:
        self.dynamodb = dynamodb
        self.table = table

    def processed_records(self, ref: ObjectRef) -> int | None:
        try:
            item = self.dynamodb.get_item(TableName=self.table, Key=marker_key(ref), ConsistentRead=True).get(
                "Item"
            )
        except (ClientError, BotoCoreError) as exc:
            raise translate(exc, f"reading the ledger for {ref.key}") from exc
        return None if item is None else int(item.get("received", {}).get("N", "0"))

    def processed_many(self, refs: Sequence[ObjectRef]) -> dict[tuple[str, str, str], int]:
        """Records received by earlier deliveries, keyed by ``ref.identity``, for every ref already
        processed: one consistent BatchGetItem per 100 objects instead of a GetItem per object."""
        keys = {ref.identity: marker_key(ref) for ref in refs}
        by_marker = {(k["pk"]["S"], k["sk"]["S"]): identity for identity, k in keys.items()}
        found: dict[tuple[str, str, str], int] = {}
        pending = list(keys.values())
        try:
            while pending:
                request = {self.table: {"Keys": pending[:BATCH_GET_KEYS], "ConsistentRead": True}}
                pending = pending[BATCH_GET_KEYS:]
                while request:
                    answer = self.dynamodb.batch_get_item(RequestItems=request)
                    for item in answer.get("Responses", {}).get(self.table, []):
                        identity = by_marker[(item["pk"]["S"], item["sk"]["S"])]
                        found[identity] = int(item.get("received", {}).get("N", "0"))
                    request = answer.get("UnprocessedKeys") or {}
                    if request:
                        time.sleep(random.uniform(0.01, 0.05))  # throttled keys: back off, ask again
        except (ClientError, BotoCoreError) as exc:
            raise translate(exc, f"reading the ledger for {len(keys)} objects") from exc
        return found

    def commit_many(
        self, commits: Sequence[tuple[ObjectRef, Mapping[str, int]]], now: datetime
    ) -> list[ObjectRef]:
        """Mark every object processed and add their summed counters, in one transaction per 99
        objects (one per invocation, not one per object); returns the refs some other delivery had
        marked already, whose counters were left out."""
        already: list[ObjectRef] = []
        for start in range(0, len(commits), MAX_MARKERS_PER_COMMIT):
            chunk = list(commits[start : start + MAX_MARKERS_PER_COMMIT])
            while chunk:
                lost = set(self._commit_chunk(chunk, now)[0])
                if not lost:
                    break
                already += [chunk[i][0] for i in lost]
                chunk = [c for i, c in enumerate(chunk) if i not in lost]
        return already

    def commit_carrying(
        self,
        commits: Sequence[tuple[ObjectRef, Mapping[str, int]]],
        items: Sequence[Any],
        now: datetime,
    ) -> tuple[dict[int, int], set[int]]:
        """Mark the objects processed, add their counters and write ``items`` (other tables' conditional
        writes, e.g. ``DynamoVehicleStates.commit_items``) in one transaction: all or nothing.

        Returns the markers that existed already (index -> the records the earlier delivery
        received, which the failed condition hands back) and the indexes of the items whose
        condition failed: nothing is written then. Empty both when it committed. Raises
        ``ValidationError`` past DynamoDB's 100 items, and what AWS raises otherwise.
        """
        if len(commits) + len(items) + 1 > MAX_TRANSACT_ITEMS:
            raise ValidationError(
                f"a commit of {len(commits)} objects carrying {len(items)} writes is over DynamoDB's "
                f"{MAX_TRANSACT_ITEMS} items per transaction"
            )
        return self._commit_chunk(list(commits), now, list(items))

    def _commit_chunk(
        self,
        chunk: list[tuple[ObjectRef, Mapping[str, int]]],
        now: datetime,
        carried: Sequence[dict[str, Any]] = (),
    ) -> tuple[dict[int, int], set[int]]:
        """One transaction: the markers, ``carried``, the counters. The markers that existed already
        (index -> records their delivery received) and the indexes of the carried items whose
        condition failed (nothing written then)."""
        items: list[dict[str, Any]] = [
            {"Put": {"TableName": self.table, "Item": _marker(ref, counters, now),
                     "ConditionExpression": "attribute_not_exists(pk)",
                     "ReturnValuesOnConditionCheckFailure": "ALL_OLD"}}
            for ref, counters in chunk
        ]  # fmt: skip
        items += carried
        total: Counter[str] = Counter()
        for _, counters in chunk:
            total.update(counters)
        total = Counter({k: v for k, v in total.items() if v})
        if total:
            key = counters_key(now, shard_of(chunk[0][0]))
            items.append({"Update": {"TableName": self.table, "Key": key, **add_counters_update(total, now)}})
        what = chunk[0][0].key if len(chunk) == 1 else f"{len(chunk)} objects"
        for attempt in range(COMMIT_ATTEMPTS):
            try:
                with _COMMIT_LOCK:
                    self.dynamodb.transact_write_items(TransactItems=items)
                return {}, set()
            except ClientError as exc:
                reasons = exc.response.get("CancellationReasons") or []
                codes = {r.get("Code") for r in reasons}
                cancelled = error_code(exc) == "TransactionCanceledException"
                if cancelled and "ConditionalCheckFailed" in codes:
                    failed = {i for i, r in enumerate(reasons) if r.get("Code") == "ConditionalCheckFailed"}
                    markers = len(chunk)
                    return (
                        {i: _received(reasons[i].get("Item")) for i in failed if i < markers},
                        {i - markers for i in failed if markers <= i < markers + len(carried)},
                    )
                conflict = cancelled and "TransactionConflict" in codes
                if not conflict or attempt == COMMIT_ATTEMPTS - 1:
                    if conflict:
                        raise TransientAWSError(
                            f"committing {what}: transaction conflicts persisted"
                        ) from exc
                    raise translate(exc, f"committing {what} to the ledger") from exc
                time.sleep(random.uniform(0.01, 0.05) * 2**attempt)  # another commit holds the shard
            except BotoCoreError as exc:
                raise translate(exc, f"committing {what} to the ledger") from exc
        return {}, set()

    def count_duplicate(self, ref: ObjectRef, records: int, now: datetime) -> None:
        update = add_counters_update({"duplicate_objects": 1, "duplicate_records": records}, now)
        try:
            self.dynamodb.update_item(TableName=self.table, Key=counters_key(now, shard_of(ref)), **update)
        except (ClientError, BotoCoreError) as exc:
            raise translate(exc, f"counting a duplicate of {ref.key}") from exc

    def generation(self) -> str:
        """An id that changes when the stack's data is wiped (``local reset``), so caches can notice."""
        try:
            item = self.dynamodb.get_item(TableName=self.table, Key=GENERATION_KEY, ConsistentRead=True).get(
                "Item"
            )
            if item is not None:
                return item["value"]["S"]
            value = uuid.uuid4().hex
            self.dynamodb.put_item(
                TableName=self.table,
                Item={**GENERATION_KEY, "value": {"S": value}},
                ConditionExpression="attribute_not_exists(pk)",
            )
            return value
        except ClientError as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                return self.generation()  # another process created it first
            raise translate(exc, f"reading the stack generation from {self.table}") from exc
        except BotoCoreError as exc:
            raise translate(exc, f"reading the stack generation from {self.table}") from exc

    def counters(self) -> dict[str, dict[str, int]]:
        """Every counters item, keyed by ``YYYY-MM-DDTHH#<shard>``; callers sum them."""
        hours: dict[str, dict[str, int]] = {}
        kwargs: dict[str, Any] = {
            "TableName": self.table,
            "KeyConditionExpression": "pk = :pk",
            "ExpressionAttributeValues": {":pk": {"S": COUNTERS_PK}},
        }
        try:
            while True:
                page = self.dynamodb.query(**kwargs)
                for item in page.get("Items", []):
                    hours[item["sk"]["S"]] = {
                        name: int(attr["N"])
                        for name, attr in item.items()
                        if "N" in attr and name != "expires_at"
                    }
                if "LastEvaluatedKey" not in page:
                    return hours
                kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        except (ClientError, BotoCoreError) as exc:
            raise translate(exc, f"reading telemetry counters from {self.table}") from exc
