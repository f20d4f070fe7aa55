"""Three changes to how moto evaluates a DynamoDB UpdateItem that keep its answers and cut its time.

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

Applied by :func:`fleetota_core.local.server.start_moto`, before the server takes a request, and only
to the process that runs moto. ``bench/moto_update_item.py`` measures the effect.
"""

from __future__ import annotations

import functools
from typing import Any

_APPLIED = False
PARSED_EXPRESSIONS_KEPT = 256


def apply() -> None:
    """Patch moto's UpdateItem validation and parsing (idempotent)."""
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
    _APPLIED = True
