"""The fleet snapshot as a DataFrame: the one place the dashboard turns the Lambda's JSON rows into pandas."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd

from fleetota_core.adapters.fleet_snapshot import read_fleet_snapshot

if TYPE_CHECKING:
    from fleetota_core.adapters.clients import ClientFactory
    from fleetota_core.adapters.fleet_snapshot import SnapshotDocument
    from fleetota_core.adapters.resources import Resources


def snapshot_frame(document: SnapshotDocument) -> pd.DataFrame:
    """One row per VIN with ``vin`` first, then the document's columns; ``last_ts`` as UTC timestamps.

    ``frame.attrs`` holds ``as_of`` (when it was taken), ``high_water`` and ``rebuilt_at``.
    """
    frame = pd.DataFrame(list(document.vehicles.values()), columns=document.columns)
    frame.insert(0, "vin", list(document.vehicles))
    if "last_ts" in frame.columns:
        frame["last_ts"] = pd.to_datetime(frame["last_ts"], utc=True, errors="coerce", format="ISO8601")
    frame.attrs.update(as_of=document.as_of, high_water=document.high_water, rebuilt_at=document.rebuilt_at)
    return frame


def read_snapshot_frame(clients: ClientFactory, resources: Resources) -> pd.DataFrame | None:
    """The latest fleet snapshot as a frame, or None before the first usable one (``read_fleet_snapshot``)."""
    document = read_fleet_snapshot(clients, resources)
    return None if document is None else snapshot_frame(document)
