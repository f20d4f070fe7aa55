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


def to_attr(value: Any) -> dict[str, Any]:
    return _serializer.serialize(_number(value))


def to_item(values: dict[str, Any]) -> dict[str, Any]:
    return {k: to_attr(v) for k, v in values.items() if v is not None}


def from_item(item: dict[str, Any] | None) -> dict[str, Any] | None:
    if item is None:
        return None
    return {k: _plain(_deserializer.deserialize(v)) for k, v in item.items()}


def set_clause(sets: dict[str, Any]) -> tuple[str, dict[str, str], dict[str, Any]]:
    """``SET #s0 = :s0, ...`` for ``sets``, with its attribute names and values (prefixes ``#s``/``:s``)."""
    names = {f"#s{i}": name for i, name in enumerate(sets)}
    values = {f":s{i}": to_attr(value) for i, value in enumerate(sets.values())}
    return "SET " + ", ".join(f"#s{i} = :s{i}" for i in range(len(sets))), names, values


def sortable_ts(ts: datetime) -> str:
    """A fixed-width UTC timestamp, so string order is time order in sort keys."""
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
