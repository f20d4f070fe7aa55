"""Plain Python values <-> DynamoDB attribute values, for the campaign and deployment stores."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer


class _ExactDeserializer(TypeDeserializer):
    """Reads every stored number exactly. boto3's own traps numbers it would round (past 38 digits,
    e.g. a ``seq`` of 10**40 stored before readings were bounded), which made every scan fail."""

    def _deserialize_n(self, value: str) -> Decimal:
        return Decimal(value)


_serializer = TypeSerializer()
_deserializer = _ExactDeserializer()


def _number(value: Any) -> Any:
    if isinstance(value, float):
        return Decimal(str(value))
    if isinstance(value, dict):
        return {k: _number(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_number(v) for v in value]
    return value


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | set | tuple):
        return [_plain(v) for v in value]
    return value


# The number of digits DynamoDB keeps; a longer integer goes through boto3, which refuses it.
_MAX_EXACT_INT = 10**38


def to_attr(value: Any) -> dict[str, Any]:
    # The common types without boto3's serializer: a 1,000,000-deployment campaign writes ~10M of them.
    kind = type(value)
    if kind is str:
        return {"S": value}
    if kind is bool:
        return {"BOOL": value}
    if kind is int and -_MAX_EXACT_INT < value < _MAX_EXACT_INT:
        return {"N": str(value)}
    return _serializer.serialize(_number(value))


def to_item(values: dict[str, Any]) -> dict[str, Any]:
    return {k: to_attr(v) for k, v in values.items() if v is not None}


def from_attr(attr: dict[str, Any]) -> Any:
    """One attribute value as a plain value (numbers as int when integral, else float)."""
    if len(attr) == 1:
        (kind, value), *_ = attr.items()
        if kind == "S" or kind == "BOOL":
            return value
        if kind == "N" and value.lstrip("-").isdigit():
            return int(value)
    return _plain(_deserializer.deserialize(attr))


def from_item(item: dict[str, Any] | None) -> dict[str, Any] | None:
    if item is None:
        return None
    return {k: from_attr(v) for k, v in item.items()}


def set_clause(sets: dict[str, Any]) -> tuple[str, dict[str, str], dict[str, Any]]:
    """``SET #s0 = :s0, ...`` for ``sets``, with its attribute names and values (prefixes ``#s``/``:s``)."""
    names = {f"#s{i}": name for i, name in enumerate(sets)}
    values = {f":s{i}": to_attr(value) for i, value in enumerate(sets.values())}
    return "SET " + ", ".join(f"#s{i} = :s{i}" for i in range(len(sets))), names, values


def sortable_ts(ts: datetime) -> str:
    """A fixed-width UTC timestamp, so string order is time order in sort keys."""
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
