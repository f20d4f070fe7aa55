"""The registry's change feed: which registrations changed lately, so a processor that keeps registry
answers for a day still learns of a retirement, a new key or an edited attribute within seconds.

One small item holds it (``adapters/registry_changes.py``): the VINs of the existing registrations
changed in the last ``CHANGE_RETENTION_S``, each with the time of its last change, plus an epoch and
a version. A writer adds the VINs it changed after writing them. A reader compares what it reads
with what it read before: a VIN whose change time is new to it is evicted, and a new epoch evicts
everything (the feed overflowed, or was lost). Comparing the feed with itself, not change times
with the reader's clock, keeps clock skew between writers and readers out of it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

# A change is kept a little longer than a processor keeps a registry answer (24 h), so a feed entry
# is never pruned while an answer read before it may still be in use, even with an hour of skew.
CHANGE_RETENTION_S = 25 * 3600
# About 27 bytes an entry (17-byte VIN name, a 13-digit number, map overhead): ~108 KB at most, well
# under DynamoDB's 400 KB item limit. More changes within the retention bump the epoch instead.
MAX_CHANGES = 4_000


@dataclass(frozen=True)
class RegistryChanges:
    """The feed as read or written: ``changed_ms`` maps a VIN to its last change (ms since the epoch)."""

    epoch: int = 0
    version: int = 0
    changed_ms: Mapping[str, int] = field(default_factory=dict)

    def with_changes(
        self, vins: Iterable[str], now_ms: int, max_changes: int = MAX_CHANGES
    ) -> RegistryChanges:
        """The next version: ``vins`` stamped ``now_ms``, entries past the retention pruned; on
        overflow a new epoch with no entries (readers then drop everything they cached)."""
        horizon = now_ms - CHANGE_RETENTION_S * 1000
        kept = {vin: at for vin, at in self.changed_ms.items() if at > horizon}
        for vin in vins:
            # A change of the same VIN in the same millisecond must still look new to readers.
            kept[vin] = max(now_ms, kept.get(vin, 0) + 1)
        if len(kept) > max_changes:
            return RegistryChanges(self.epoch + 1, self.version + 1, {})
        return RegistryChanges(self.epoch, self.version + 1, kept)

    def evictions(self, seen: RegistryChanges | None) -> set[str] | None:
        """The VINs changed since a reader saw ``seen``; None when it must drop everything (its first
        read, or a new epoch). An older version than ``seen`` (a lagging replica) evicts nothing."""
        if seen is None or self.epoch != seen.epoch:
            return None
        if self.version <= seen.version:
            return set()
        return {vin for vin, at in self.changed_ms.items() if seen.changed_ms.get(vin) != at}
