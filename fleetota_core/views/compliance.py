"""Compliance evidence for the dashboard: a VIN's software history and a release's fleet report,
as frames for tables and charts and as the CSV/JSON files an auditor downloads."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pandas as pd

from fleetota_core.services.campaigns.compliance import (
    HISTORY_COLUMNS,
    RELEASE_COLUMNS,
    RELEASE_STATUSES,
    history_rows,
    release_report,
    vin_history,
)

if TYPE_CHECKING:
    from fleetota_core.domain.software_history import SoftwareHistory
    from fleetota_core.services.campaigns.ports import CampaignPorts

__all__ = ["RELEASE_STATUSES", "history_frame", "release_frame", "timeline_frame", "vin_history"]

# How far back the chart draws a version whose start FleetOTA never recorded.
UNKNOWN_START = timedelta(days=7)


def history_frame(history: SoftwareHistory) -> pd.DataFrame:
    """One row per version run (``kind=ran``) and per install attempt (``kind=attempt``)."""
    return pd.DataFrame(history_rows(history), columns=list(HISTORY_COLUMNS))


def timeline_frame(history: SoftwareHistory, now: datetime | None = None) -> pd.DataFrame:
    """``version, start, end, label`` per interval, open ends drawn up to now / a week before the rest."""
    now = now or datetime.now(UTC)
    known = [t for i in history.intervals for t in (i.since, i.until) if t is not None]
    earliest = min(known, default=now) - UNKNOWN_START
    rows = [
        {
            "version": i.version,
            "start": i.since or earliest,
            "end": i.until or now,
            "label": i.campaign_name or i.evidence,
        }
        for i in history.intervals
    ]
    frame = pd.DataFrame(rows, columns=["version", "start", "end", "label"])
    # Stored times carry their own offsets; one UTC dtype is what a timeline chart can draw.
    return frame.assign(
        start=pd.to_datetime(frame["start"], utc=True), end=pd.to_datetime(frame["end"], utc=True)
    )


def release_frame(version: str, ports: CampaignPorts) -> pd.DataFrame:
    """Which vehicles run ``version`` (and since when), and which of its campaigns' vehicles wait."""
    rows = [r.as_row() for r in release_report(version, ports)]
    return pd.DataFrame(rows, columns=list(RELEASE_COLUMNS))


def as_csv(frame: pd.DataFrame) -> bytes:
    return frame.to_csv(index=False).encode()


def as_json(key: str, value: str, frame: pd.DataFrame) -> bytes:
    records: list[dict[str, Any]] = json.loads(frame.to_json(orient="records"))
    return json.dumps({key: value, "rows": records}, indent=2).encode()
