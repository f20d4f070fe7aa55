"""The fleet snapshot as a DataFrame: the one place the dashboard turns the Lambda's NDJSON into pandas.

pyarrow's JSON reader parses the vehicle lines in C++ against a fixed schema: at 100,000 vehicles a
few times faster than ``json.loads`` plus a DataFrame built from Python objects. The Lambdas never
import this module (see the import-linter contracts in ``pyproject.toml``).
"""

from __future__ import annotations

import io
import logging
from typing import TYPE_CHECKING

import pandas as pd
import pyarrow as pa
import pyarrow.json as pa_json

from fleetota_core.adapters.fleet_snapshot import SNAPSHOT_COLUMNS, SnapshotFormatError, fresh_after_ms
from fleetota_core.adapters.fleet_snapshot_reads import fleet_snapshot_version, read_fleet_snapshot

__all__ = ["fleet_snapshot_version", "read_snapshot_frame", "snapshot_frame"]
from fleetota_core.domain.vehicle_health import ATTRIBUTES as HEALTH_ATTRIBUTES

if TYPE_CHECKING:
    from fleetota_core.adapters.clients import ClientFactory
    from fleetota_core.adapters.fleet_snapshot import SnapshotDocument
    from fleetota_core.adapters.resources import Resources

logger = logging.getLogger(__name__)

_INTEGERS = {"model_year", "last_ts_ms", "last_seq"}
_FLOATS = {"lat", "lon", "speed_kph", "soc_pct", "signal_dbm", "odometer_km", *HEALTH_ATTRIBUTES}
_FLAGS = {"charging", "online", "needs_update"}


def _arrow_type(column: str) -> pa.DataType:
    if column in _INTEGERS:
        return pa.int64()
    if column in _FLOATS:
        return pa.float64()
    return pa.bool_() if column in _FLAGS else pa.string()


SNAPSHOT_SCHEMA = pa.schema([(column, _arrow_type(column)) for column in SNAPSHOT_COLUMNS])
_PARSE = pa_json.ParseOptions(explicit_schema=SNAPSHOT_SCHEMA, unexpected_field_behavior="ignore")


def snapshot_frame(document: SnapshotDocument) -> pd.DataFrame:
    """One row per VIN with ``SNAPSHOT_COLUMNS``; ``last_ts`` as UTC timestamps.

    ``frame.attrs`` holds ``as_of`` (when it was taken), ``high_water`` and ``rebuilt_at``. A column
    this version does not know is left out; a line that does not fit the schema raises
    :class:`SnapshotFormatError`.
    """
    if not document.lines.strip():  # a young stack's first snapshot: no vehicle yet (pyarrow refuses it)
        table = SNAPSHOT_SCHEMA.empty_table()
    else:
        try:
            table = pa_json.read_json(io.BytesIO(document.lines), parse_options=_PARSE)
        except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
            raise SnapshotFormatError(f"a vehicle line does not fit the snapshot's columns: {exc}") from exc
    frame = table.to_pandas()
    if len(frame) and frame["vin"].isna().any():
        raise SnapshotFormatError("a vehicle line has no 'vin'")
    fresh_after = fresh_after_ms(document.as_of)
    if fresh_after is not None and len(frame):
        # The merge passes lines through as written: online is judged here, at the snapshot's time.
        network = frame["network"]
        frame["online"] = network.notna() & (network != "NONE") & (frame["last_ts_ms"] >= fresh_after)
    frame["last_ts"] = pd.to_datetime(frame["last_ts"], utc=True, errors="coerce", format="ISO8601")
    frame.attrs.update(as_of=document.as_of, high_water=document.high_water, rebuilt_at=document.rebuilt_at)
    return frame


def read_snapshot_frame(clients: ClientFactory, resources: Resources) -> pd.DataFrame | None:
    """The latest fleet snapshot as a frame, or None before the first usable one.

    An unusable snapshot is logged and read as missing, as ``read_fleet_snapshot`` does: the pages
    fall back to their capped table scan until the update manager has rebuilt it.
    """
    document = read_fleet_snapshot(clients, resources)
    if document is None:
        return None
    try:
        return snapshot_frame(document)
    except SnapshotFormatError as exc:
        logger.warning("the fleet snapshot is unusable (%s); reading the vehicles table instead", exc)
        return None
