"""The local stack's saved state, as the Simulator page shows it and resets it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fleetota_core.local.lifecycle import persistence_status, reset_stack

if TYPE_CHECKING:
    from fleetota_core.settings import Settings

# The dashboard leaves the local stack running when it exits (it outlives reruns and restarts).
STOP_HINT = "The local stack keeps running when the dashboard exits; stop it with `fleetota local stop`."


def reset_local_data(settings: Settings) -> str:
    """Empty every table, bucket and queue of the local stack and its saved state; returns what it did."""
    return reset_stack(settings)


def local_data_status(settings: Settings) -> dict[str, Any] | None:
    """Where the local stack saves its state, how recently, and a ``warning`` if it started empty."""
    return persistence_status(settings)
