"""Where the tick finds its work without querying the deployments table: rosters and due hints.

Both live in the ledger table, which stays small (moto sorts a whole table on every Query, so a
Query on 100,000 deployments costs about a second locally; on DynamoDB it is a hot index key).

- Roster (``pk = roster#<campaign>#<wave>``, ``sk = <chunk>``): the wave's VINs in rollout order,
  ``ROSTER_CHUNK`` per item as one comma-joined string. Written once when the deployments are
  created; a cursor per wave on the campaign says how far the tick has come.
- Hints (``pk = due#<campaign>#<lane>``, ``sk = <next_action_at>#<vin>``): "look at this deployment
  at this time". Lane ``active`` holds in-flight deployments (lease, timeout), lane ``wait`` the
  deferred and retried ones. A hint is written before the conditional write that makes it needed,
  so a crash leaves at worst a stale hint; the deployment item stays the truth, and a stale hint is
  dropped when it comes due. Hints expire (TTL) a week after their time.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from fleetota_core.adapters.aws_errors import reading
from fleetota_core.adapters.campaign_items import parse_ts, ts_attr
from fleetota_core.errors import TransientAWSError

if TYPE_CHECKING:
    from collections.abc import Iterable

    from fleetota_core.domain.deployment import Lane

Hint = tuple[datetime, str]
ROSTER_CHUNK = 1000
HINT_TTL = timedelta(days=7)
_TS_WIDTH = len("2026-01-01T00:00:00.000000Z")


def _roster_pk(campaign_id: str, wave: int) -> str:
    return f"roster#{campaign_id}#{wave:03d}"


def _hint_key(campaign_id: str, lane: Lane, at: datetime, vin: str) -> dict[str, Any]:
    return {"pk": {"S": f"due#{campaign_id}#{lane}"}, "sk": {"S": f"{ts_attr(at)}#{vin}"}}


def _hint_of(sk: str) -> Hint:
    return parse_ts(sk[:_TS_WIDTH]), sk[_TS_WIDTH + 1 :]


class DeploymentSchedule:
    """Accepts an injected DynamoDB client; ``table`` is the ledger table."""

    def __init__(self, dynamodb: Any, table: str) -> None:
        self.dynamodb = dynamodb
        self.table = table

    # Roster -------------------------------------------------------------------------------------

    def put_roster(self, campaign_id: str, wave: int, vins: list[str]) -> None:
        items = (
            {
                "pk": {"S": _roster_pk(campaign_id, wave)},
                "sk": {"S": f"{start // ROSTER_CHUNK:06d}"},
                "vins": {"S": ",".join(vins[start : start + ROSTER_CHUNK])},
            }
            for start in range(0, len(vins), ROSTER_CHUNK)
        )
        self._write([{"PutRequest": {"Item": item}} for item in items])

    def roster(self, campaign_id: str, wave: int, start: int, count: int) -> list[str]:
        """The VINs at roster positions ``start`` .. ``start + count - 1`` of a wave (fewer at its end)."""
        chunks = range(start // ROSTER_CHUNK, (start + count - 1) // ROSTER_CHUNK + 1)
        keys = [{"pk": {"S": _roster_pk(campaign_id, wave)}, "sk": {"S": f"{c:06d}"}} for c in chunks]
        found: dict[str, list[str]] = {}
        request: dict[str, Any] = {self.table: {"Keys": keys, "ConsistentRead": True}}
        while request:
            with reading(f"table {self.table}"):
                response = self.dynamodb.batch_get_item(RequestItems=request)
            for item in response.get("Responses", {}).get(self.table, []):
                found[item["sk"]["S"]] = item["vins"]["S"].split(",")
            request = response.get("UnprocessedKeys") or {}
        vins = [vin for c in chunks for vin in found.get(f"{c:06d}", [])]
        offset = start - chunks[0] * ROSTER_CHUNK
        return vins[offset : offset + count]

    # Hints --------------------------------------------------------------------------------------

    def hint(self, campaign_id: str, lane: Lane, at: datetime, vin: str) -> None:
        with reading(f"table {self.table}"):
            self.dynamodb.put_item(TableName=self.table, Item=self._hint_item(campaign_id, lane, at, vin))

    def hint_many(self, campaign_id: str, lane: Lane, hints: Iterable[Hint]) -> None:
        """Write ``(at, vin)`` hints in batches of 25."""
        unique = dict.fromkeys(hints)  # one batch may not name a key twice
        self._write([{"PutRequest": {"Item": self._hint_item(campaign_id, lane, at, v)}} for at, v in unique])

    def drop_many(self, campaign_id: str, lane: Lane, hints: Iterable[Hint]) -> None:
        keys = {(at, vin) for at, vin in hints}
        self._write([{"DeleteRequest": {"Key": _hint_key(campaign_id, lane, at, v)}} for at, v in keys])

    def existing(self, campaign_id: str, lane: Lane, hints: list[Hint]) -> set[Hint]:
        """Which of the ``(at, vin)`` hints of a lane are filed (consistent read)."""
        found: set[Hint] = set()
        unique = list(dict.fromkeys(hints))
        for start in range(0, len(unique), 100):
            keys = [_hint_key(campaign_id, lane, at, vin) for at, vin in unique[start : start + 100]]
            request: dict[str, Any] = {self.table: {"Keys": keys, "ConsistentRead": True}}
            while request:
                with reading(f"table {self.table}"):
                    response = self.dynamodb.batch_get_item(RequestItems=request)
                for item in response.get("Responses", {}).get(self.table, []):
                    found.add(_hint_of(item["sk"]["S"]))
                request = response.get("UnprocessedKeys") or {}
        return found

    def due(
        self, campaign_id: str, lane: Lane, now: datetime, limit: int, after: Hint | None = None
    ) -> list[Hint]:
        """Up to ``limit`` ``(at, vin)`` hints of a lane that are due, oldest first, after ``after``."""
        now_key = ts_attr(now)
        out: list[Hint] = []
        pk = f"due#{campaign_id}#{lane}"
        kwargs: dict[str, Any] = {
            "TableName": self.table,
            "KeyConditionExpression": "pk = :pk AND sk <= :now",
            # "~" sorts after every VIN character, so hints at exactly ``now`` are included.
            "ExpressionAttributeValues": {":pk": {"S": pk}, ":now": {"S": f"{now_key}#~"}},
            "ConsistentRead": True,
        }
        if after is not None:
            kwargs["ExclusiveStartKey"] = _hint_key(campaign_id, lane, *after)
        with reading(f"table {self.table}"):
            while len(out) < limit:
                page = self.dynamodb.query(**kwargs, Limit=min(limit - len(out), 1000))
                out.extend(_hint_of(item["sk"]["S"]) for item in page.get("Items", []))
                if "LastEvaluatedKey" not in page:
                    break
                kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        return out

    def _hint_item(self, campaign_id: str, lane: Lane, at: datetime, vin: str) -> dict[str, Any]:
        expires = int((at + HINT_TTL).timestamp())
        return {**_hint_key(campaign_id, lane, at, vin), "expires_at": {"N": str(expires)}}

    def _write(self, requests: list[dict[str, Any]]) -> None:
        batch_write(self.dynamodb, self.table, requests)


def batch_write(dynamodb: Any, table: str, requests: list[dict[str, Any]]) -> None:
    """Put or delete ``requests`` in batches of 25, retrying what DynamoDB leaves unprocessed."""
    for start in range(0, len(requests), 25):
        pending: dict[str, Any] = {table: requests[start : start + 25]}
        for attempt in range(8):
            with reading(f"table {table}"):
                pending = dynamodb.batch_write_item(RequestItems=pending).get("UnprocessedItems") or {}
            if not pending:
                break
            time.sleep(0.05 * 2**attempt)
        else:
            raise TransientAWSError(f"DynamoDB left {len(pending[table])} schedule items unwritten")
