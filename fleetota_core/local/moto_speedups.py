"""Changes to how moto runs DynamoDB UpdateItem and TransactWriteItems, and writes DynamoDB's answers,
that keep its answers and cut its time.

The telemetry processor writes a vehicle that reports by exception with one UpdateItem of about 30
``SET`` and ``REMOVE`` actions. moto 5 took about 30 ms of CPU for each (a PutItem of the same item:
about 6 ms), and the local stack serialises DynamoDB writes, so this one request bounded how fast the
whole local pipeline could go. Three parts of that time repeat work whose answer is already known:

* moto checks that an update has at most one ``SET``, ``REMOVE`` and ``ADD`` clause, and that no two
  actions touch overlapping paths, at every level of its expression tree, searching the whole subtree
  each time: quadratic in the number of actions. The check at the root searches the whole tree, so it
  finds everything the deeper ones would; only the root's is kept.
* Each of the validator's nine passes asks, at every node of the tree, for the node types it handles,
  building them anew each time; they are fixed per pass, so each pass's are kept.
* moto parses each update expression twice per request (once to list its placeholders, once to run
  it), and the processor sends the same few expressions thousands of times. Parsed trees are kept by
  expression; moto never changes a parsed tree in place (its validator works on a deep copy).

A fourth is in TransactWriteItems. To roll a failed transaction back, moto deep-copies every table
the transaction names before it starts: the whole table, so a transaction's cost grows with the
table. The processor's ledger transaction (once per invocation) copied the ledger table, and each
install permit and notice the update manager sends claims its deployment in a transaction that
copied the deployments table: at 10,000 vehicles a notice wave held the serialised writes for
seconds. The patched transaction keeps, instead, a copy of each item it names, and on failure puts
those items back (and drops the stream records the transaction added), which is the state the table
copy held. It also rolls back where moto did not: a transaction refused for an entry with two
operations had kept the writes of the entries before it; DynamoDB writes all or nothing.

A fifth is in every DynamoDB answer that carries items. moto writes its answers from the botocore
model, and for each attribute value it looks for all ten of the value's possible types (``S``,
``N``, ``B``, ``SS``, ... ``BOOL``) under each of their aliases: three quarters of the CPU time of a
GetItem or of an UpdateItem that returns its item. An attribute value holds one type, so the patched
serializer writes the types the value holds, converting each as moto does (strings with ``str``,
binary as base64, maps and lists value by value), and hands any value it does not recognise, as a
whole, to moto's own code.

Applied by :func:`fleetota_core.local.server.start_moto`, before the server takes a request, and only
to the process that runs moto. ``bench/moto_update_item.py`` measures the effect.
"""

from __future__ import annotations

import copy
import functools
import sys
from typing import Any

_APPLIED = False
PARSED_EXPRESSIONS_KEPT = 256


def apply() -> None:
    """Patch moto's UpdateItem validation and parsing, its transactions and its writing of attribute
    values (idempotent)."""
    global _APPLIED
    if _APPLIED:
        return
    # Both modules start with "# type: ignore", so mypy sees none of their names.
    from moto.dynamodb.parsing.ast_nodes import DepthFirstTraverser  # type: ignore[attr-defined]
    from moto.dynamodb.parsing.expressions import UpdateExpressionParser  # type: ignore[attr-defined]
    from moto.dynamodb.parsing.validators import ActionCountValidator, OverlappingPathsValidator

    ActionCountValidator.traverse = lambda self, node: self.verify_action_counts(node)
    OverlappingPathsValidator.traverse = lambda self, node: self.check_for_overlapping_paths(node)
    handled: dict[type, tuple[type, ...]] = {}

    def nodes_to_be_processed(self: Any) -> tuple[type, ...]:
        kind = type(self)
        if kind not in handled:
            handled[kind] = tuple(self._processing_map())
        return handled[kind]

    DepthFirstTraverser.nodes_to_be_processed = nodes_to_be_processed
    make: Any = functools.lru_cache(maxsize=PARSED_EXPRESSIONS_KEPT)(UpdateExpressionParser.make.__func__)
    UpdateExpressionParser.make = classmethod(make)
    _transactions_copy_items_not_tables()
    _attribute_values_written_by_type()
    _APPLIED = True


def _transactions_copy_items_not_tables() -> None:
    from moto.dynamodb.models import DynamoDBBackend
    from moto.dynamodb.models.table import Table

    models = sys.modules[DynamoDBBackend.__module__]

    class _TablesNotCopied:
        """``copy`` as moto's backend module sees it: a table's "copy" is the table itself (the
        transaction below keeps copies of the items instead); every other value is deep-copied."""

        copy = staticmethod(copy.copy)

        @staticmethod
        def deepcopy(value: Any, memo: dict[int, Any] | None = None) -> Any:
            return value if isinstance(value, Table) else copy.deepcopy(value, memo)

    setattr(models, "copy", _TablesNotCopied)  # noqa: B010 (a module attribute mypy cannot see)
    transact = DynamoDBBackend.transact_write_items

    def transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:
        kept = [_keep(self, entry) for entry in transact_items[:100] if len(entry) == 1]
        try:
            transact(self, transact_items)
        except Exception:
            for table, hash_key, range_key, item, streamed in reversed([k for k in kept if k]):
                _put_back(table, hash_key, range_key, item, streamed)
            raise

    DynamoDBBackend.transact_write_items = transact_write_items  # type: ignore[method-assign]


def _keep(backend: Any, entry: dict[str, Any]) -> tuple[Any, Any, Any, Any, int | None] | None:
    """The table, key, a copy of the item as it is (None if absent) and the table's stream length
    before the transaction; None for an entry moto will refuse before it writes anything."""
    op = next(iter(entry.values()))
    table = backend.tables.get(op.get("TableName")) if isinstance(op, dict) else None
    if table is None:
        return None
    keys = op.get("Key") or op.get("Item")
    if not isinstance(keys, dict) or table.hash_key_attr not in keys:
        return None
    if table.has_range_key and table.range_key_attr not in keys:
        return None
    hash_key, range_key = backend.get_keys_value(table, keys)
    streamed = len(table.stream_shard.items) if table.stream_shard is not None else None
    return table, hash_key, range_key, copy.deepcopy(table.get_item(hash_key, range_key)), streamed


def _put_back(table: Any, hash_key: Any, range_key: Any, item: Any, streamed: int | None) -> None:
    items = table.items[hash_key] if table.has_range_key else table.items
    key = range_key if table.has_range_key else hash_key
    if item is None:
        items.pop(key, None)
    else:
        items[key] = item
    if streamed is not None:
        del table.stream_shard.items[streamed:]


_NOT_PLAIN = object()
_AS_STRING = frozenset({"S", "N"})
_AS_IS = frozenset({"BOOL", "NULL"})


def _attribute_values_written_by_type() -> None:
    from moto.core.serialize import BaseJSONSerializer

    structure = BaseJSONSerializer._serialize_type_structure

    def serialize_structure(self: Any, serialized: Any, value: Any, shape: Any, key: str) -> None:
        if (
            key
            and shape.name == "AttributeValue"
            and not getattr(self._value_picker, "response_transformers", None)
        ):
            written = _attribute_value(self, value)
            if written is not _NOT_PLAIN:
                serialized[self.get_serialized_name(shape, key)] = written
                return
        structure(self, serialized, value, shape, key)

    BaseJSONSerializer._serialize_type_structure = serialize_structure  # type: ignore[method-assign]


def _attribute_value(serializer: Any, value: Any) -> Any:
    """``value`` as moto's serializer writes an AttributeValue, or ``_NOT_PLAIN`` where it holds
    anything but one of the ten types as a dict key (moto's code then writes it)."""
    if type(value) is not dict:
        return _NOT_PLAIN
    written: dict[str, Any] = {}
    for kind, held in value.items():
        if held is None:
            continue
        if kind in _AS_STRING:
            written[kind] = _as_string(held)
        elif kind in _AS_IS:
            written[kind] = held
        elif kind in ("SS", "NS"):
            written[kind] = [_as_string(member) for member in held]
        elif kind == "B":
            written[kind] = serializer._base64(held)
        elif kind == "BS":
            written[kind] = [serializer._base64(member) for member in held]
        elif kind == "M":
            members = {name: _attribute_value(serializer, member) for name, member in held.items()}
            if _NOT_PLAIN in members.values():
                return _NOT_PLAIN
            written[kind] = members
        elif kind == "L":
            elements = [_attribute_value(serializer, member) for member in held]
            if any(element is _NOT_PLAIN for element in elements):
                return _NOT_PLAIN
            written[kind] = elements
        else:
            return _NOT_PLAIN
    return written


def _as_string(value: Any) -> Any:
    """moto's string serialization: ``str`` of anything but None, {} and []."""
    return str(value) if value not in [None, {}, []] else value
