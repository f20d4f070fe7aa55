"""The registry change feed's item in the ledger table (``pk = registry#changes``, ``sk = feed``).

Beside the stack-wide items (the generation): every processor reads it at most once per 10 s with
one projected, eventually consistent GetItem; registry writers rewrite it with a conditional PutItem
on its version (read, add, prune, write; a lost race reads again). See ``domain/registry_changes.py``.
"""

from __future__ import annotations

import random
import time
from typing import TYPE_CHECKING, Any

from fleetota_core.adapters.aws_errors import AWS_CLIENT_ERRORS, error_code, reading, translate
from fleetota_core.domain.registry_changes import RegistryChanges
from fleetota_core.errors import TransientAWSError

if TYPE_CHECKING:
    from collections.abc import Iterable
    from datetime import datetime

FEED_KEY = {"pk": {"S": "registry#changes"}, "sk": {"S": "feed"}}
_NAMES = {"#e": "epoch", "#v": "version", "#c": "changed"}
WRITE_ATTEMPTS = 8


def feed_item(changes: RegistryChanges) -> dict[str, Any]:
    return {
        **FEED_KEY,
        "epoch": {"N": str(changes.epoch)},
        "version": {"N": str(changes.version)},
        "changed": {"M": {vin: {"N": str(at)} for vin, at in changes.changed_ms.items()}},
    }


def changes_from_item(item: dict[str, Any] | None) -> RegistryChanges:
    """The feed in ``item``; no item is the empty feed of epoch 0 (nothing was ever changed)."""
    if not item:
        return RegistryChanges()
    changed = item.get("changed", {}).get("M", {})
    return RegistryChanges(
        int(item["epoch"]["N"]),
        int(item["version"]["N"]),
        {vin: int(at["N"]) for vin, at in changed.items()},
    )


class RegistryChangeFeed:
    """Accepts an injected DynamoDB client; ``table`` is the ledger table."""

    def __init__(self, dynamodb: Any, table: str) -> None:
        self.dynamodb = dynamodb
        self.table = table

    def read(self) -> RegistryChanges:
        """The feed as a processor follows it: projected and eventually consistent (half the read
        units); a lagging answer is older in version, and readers ignore it."""
        with reading(f"the registry change feed in {self.table}"):
            answer = self.dynamodb.get_item(
                TableName=self.table,
                Key=FEED_KEY,
                ProjectionExpression="#e, #v, #c",
                ExpressionAttributeNames=_NAMES,
            )
        return changes_from_item(answer.get("Item"))

    def record(self, vins: Iterable[str], now: datetime) -> RegistryChanges:
        """Add ``vins`` (changed at ``now``) to the feed; returns the feed as written."""
        vins = list(dict.fromkeys(vins))
        for attempt in range(WRITE_ATTEMPTS):
            with reading(f"the registry change feed in {self.table}"):
                item = self.dynamodb.get_item(TableName=self.table, Key=FEED_KEY, ConsistentRead=True)
            current = changes_from_item(item.get("Item"))
            updated = current.with_changes(vins, int(now.timestamp() * 1000))
            condition: dict[str, Any] = (
                {"ConditionExpression": "#v = :v", "ExpressionAttributeNames": {"#v": "version"},
                 "ExpressionAttributeValues": {":v": {"N": str(current.version)}}}
                if item.get("Item") else {"ConditionExpression": "attribute_not_exists(pk)"}
            )  # fmt: skip
            try:
                self.dynamodb.put_item(TableName=self.table, Item=feed_item(updated), **condition)
                return updated
            except AWS_CLIENT_ERRORS as exc:
                if error_code(exc) != "ConditionalCheckFailedException":
                    raise translate(exc, f"writing the registry change feed in {self.table}") from exc
            time.sleep(random.uniform(0.01, 0.05) * 2**attempt)  # another writer won: read again
        raise TransientAWSError(f"writing the registry change feed in {self.table}: writes kept conflicting")
