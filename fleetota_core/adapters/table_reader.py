"""Read-only DynamoDB access for the dashboard's read models: items come back as plain Python values."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fleetota_core.adapters.aws_errors import reading
from fleetota_core.adapters.dynamo_items import from_item

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable


def _items(raw: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    # Plain ints and floats, not Decimals, which would leak into pandas as object columns.
    return [from_item(item) or {} for item in raw]


def scan_table(dynamodb: Any, table: str, limit: int | None = None) -> list[dict[str, Any]]:
    """Every item of ``table`` (or the first ``limit``); only for small tables or fallbacks."""
    out: list[dict[str, Any]] = []
    with reading(f"table {table}"):
        for page in dynamodb.get_paginator("scan").paginate(TableName=table):
            out.extend(_items(page.get("Items", [])))
            if limit is not None and len(out) >= limit:
                return out[:limit]
    return out


def query_partition(
    dynamodb: Any,
    table: str,
    key: str,
    value: str,
    index: str | None = None,
    limit: int | None = None,
    newest_first: bool = False,
    keep: Callable[[dict[str, Any]], bool] | None = None,
) -> list[dict[str, Any]]:
    """Items whose partition key ``key`` equals ``value``, in sort-key order.

    ``keep`` drops items before ``limit`` counts them, so a filtered read still fills its limit.
    """
    kwargs: dict[str, Any] = {
        "TableName": table,
        "KeyConditionExpression": "#k = :v",
        "ExpressionAttributeNames": {"#k": key},
        "ExpressionAttributeValues": {":v": {"S": value}},
        "ScanIndexForward": not newest_first,
    }
    if index:
        kwargs["IndexName"] = index
    out: list[dict[str, Any]] = []
    with reading(f"table {table}"):
        for page in dynamodb.get_paginator("query").paginate(**kwargs):
            items = _items(page.get("Items", []))
            out.extend(items if keep is None else filter(keep, items))
            if limit is not None and len(out) >= limit:
                return out[:limit]
    return out


def get_item(dynamodb: Any, table: str, key: dict[str, str]) -> dict[str, Any] | None:
    """One item by its string key attributes, or None."""
    with reading(f"table {table}"):
        item = dynamodb.get_item(TableName=table, Key={k: {"S": v} for k, v in key.items()}).get("Item")
    return _items([item])[0] if item else None
