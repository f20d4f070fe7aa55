"""What every page shares: the backend link, the one place backend errors become banners, the operator."""

from __future__ import annotations

import functools
import os
import time
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import streamlit as st

from fleetota_core.errors import ValidationError
from fleetota_core.settings import Settings
from fleetota_core.views.backend import BACKEND_ERRORS, Backend, backend_error_message, open_backend
from fleetota_core.views.fleet import (
    FleetChoices,
    fleet_choices,
    fleet_frame,
    provisioned_digest,
    provisioned_vehicles,
    with_provisioned,
)
from fleetota_core.views.fleet_snapshot import fleet_snapshot_version
from fleetota_core.views.fleet_store import FleetStore
from fleetota_core.views.text import chart_frame, plain

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    import pandas as pd

FLEET_TTL_S = 15
# How long views computed from one fleet version stay cached; a new version is a new key anyway.
FLEET_CACHE_S = 600
LIVE_REFRESH_S = 15
# Where the simulator's pid file and log live; tests point it at a temporary folder.
STATE_DIR = Path(os.environ.get("FLEETOTA_STATE_DIR", ".fleetota"))
DEFAULT_DEMO_FLEET = 100


def demo_fleet_size() -> int:
    """FLEETOTA_DEMO_FLEET: unset means the 100-vehicle demo fleet, 0 turns it off, N sets the size."""
    raw = os.environ.get("FLEETOTA_DEMO_FLEET", "").strip()
    if not raw:
        return DEFAULT_DEMO_FLEET
    try:
        return max(int(raw), 0)
    except ValueError:
        return DEFAULT_DEMO_FLEET


@st.cache_resource(show_spinner="Connecting to the FleetOTA backend…")
def _connect(settings_json: str) -> Backend:
    # Once per server process and settings: starting the local stack is not something to repeat per rerun.
    return open_backend(Settings.model_validate_json(settings_json))


def mark_frame() -> None:
    """Called by streamlit_app.py on every run, so pages know this session has the frame."""
    st.session_state["_frame_ran"] = True


def frame_guard() -> None:
    """Re-run through streamlit_app.py when Streamlit ran this page script on its own.

    Until some session has called ``st.navigation``, Streamlit treats ``pages/`` as an old-style
    multipage folder and runs the requested page file directly (no sidebar, no backend link); that
    happens to the first visitor who opens a page URL right after the server starts. Once per
    session, so a rerun never swallows a button click.
    """
    if st.session_state.get("_frame_ran"):
        return
    from streamlit.runtime.pages_manager import PagesManager

    PagesManager.uses_pages_directory = False  # what st.navigation itself sets
    st.session_state["_frame_ran"] = True
    st.rerun()


def backend() -> Backend:
    """The backend this server process is connected to (local stack started on first use)."""
    return _connect(Settings().model_dump_json())


@contextmanager
def guard(what: str = "this page") -> Iterator[None]:
    """Show backend failures as a banner instead of a traceback; the rest of the page still renders."""
    try:
        yield
    except ValidationError as exc:
        st.warning(f"{what}: {plain(exc)}", icon=":material/warning:")
    except BACKEND_ERRORS as exc:
        st.error(f"Could not load {what}. {plain(backend_error_message(exc))}", icon=":material/error:")


def live(run_every: float, what: str) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """``st.fragment(run_every=...)`` whose body is guarded too.

    A fragment's exceptions do not reach the frame's guard around ``page.run()``, so each live panel
    turns backend failures into its own banner.
    """

    def wrap(body: Callable[..., None]) -> Callable[..., None]:
        @functools.wraps(body)
        def guarded(*args: Any, **kwargs: Any) -> None:
            with guard(what):
                body(*args, **kwargs)

        return st.fragment(guarded, run_every=run_every)

    return wrap


@st.cache_data(ttl=FLEET_TTL_S, show_spinner=False)
def _provisioned(key: str, _backend: Backend) -> tuple[str, list[dict[str, Any]]]:
    vehicles = provisioned_vehicles(_backend.clients, _backend.resources, STATE_DIR)
    return provisioned_digest(vehicles), vehicles


@st.cache_resource(show_spinner=False)
def _fleet_store(key: str) -> FleetStore:
    # One parsed fleet per server process, shared by every session: at 1,000,000 vehicles it is a
    # ~250 MB frame that st.cache_data would unpickle on every read.
    return FleetStore()


def forget_fleet() -> None:
    """Drop the parsed fleet, so the next page run reads it again (benchmarks time that cold read)."""
    _fleet_store.clear()


def fleet_view() -> tuple[str, pd.DataFrame]:
    """``(version, fleet)``: every vehicle's latest state (normalized), with provisioned never-reported
    ones, and the version to key anything computed from it on.

    The version is the snapshot's ETag (one HEAD request per call) and the provisioned fleet's digest;
    without a snapshot (a young stack reads the vehicles table) it changes every ``FLEET_TTL_S``. A
    newer version is read in the background while the current one keeps being served.
    """
    b = backend()
    snapshot = fleet_snapshot_version(b.clients, b.resources)
    digest, vehicles = _provisioned(b.key, b)
    if snapshot is None:
        snapshot = f"scan@{int(time.time() // FLEET_TTL_S)}"
    with st.spinner("Loading the fleet…"):
        return _fleet_store(b.key).get(
            f"{snapshot}|{digest}",
            lambda: with_provisioned(fleet_frame(b.clients, b.resources), vehicles),
        )


@st.cache_data(ttl=FLEET_CACHE_S, max_entries=4, show_spinner=False)
def choices(version: str, _fleet: pd.DataFrame) -> FleetChoices:
    """The filters' options for one fleet version (three passes over a million rows, done once)."""
    return fleet_choices(_fleet)


def fleet() -> pd.DataFrame:
    """The fleet of :func:`fleet_view`."""
    return fleet_view()[1]


def fleet_view_or_stop() -> tuple[str, pd.DataFrame]:
    """:func:`fleet_view`, or a banner and the end of this page when the backend cannot provide it.

    Pages guard their own first read, so they stay safe even when run without the frame's guard.
    """
    with guard("the fleet"):
        return fleet_view()
    st.stop()


def fleet_or_stop() -> pd.DataFrame:
    """The fleet of :func:`fleet_view_or_stop`."""
    return fleet_view_or_stop()[1]


def operator() -> str | None:
    """The operator for write actions, or None when the dashboard is read-only."""
    return st.session_state.get("operator") or None


def require_operator() -> str | None:
    """The operator, or an explanation of how to get write access and None."""
    name = operator()
    if name is None:
        st.info(
            "Read-only: sign in as an operator to make changes. In AWS mode configure OIDC in "
            "`.streamlit/secrets.toml` (`[auth]` section, see docs/dashboard.md); locally, type your "
            "name in the sidebar.",
            icon=":material/lock:",
        )
    return name


def time_window(hours: float) -> list[datetime]:
    """``[now - hours, now]`` in UTC, for a chart's x-axis range."""
    end = datetime.now(UTC)
    return [end - timedelta(hours=hours), end]


def empty_state(message: str, icon: str = ":material/lightbulb:") -> None:
    st.info(message, icon=icon)


TIME_RANGES = {"1 hour": 1, "6 hours": 6, "24 hours": 24, "7 days": 168}


def time_range(default: str, key: str) -> float:
    """Hours chosen in a segmented time-range control."""
    return TIME_RANGES[
        st.segmented_control("Time range", list(TIME_RANGES), default=default, key=key) or default
    ]


def trend_charts(trends: pd.DataFrame, hours: float, columns: int, height: int, key: str) -> None:
    """One small line chart per ``chart`` in ``trends`` (columns ts, value, series, chart), in a grid."""
    import plotly.express as px  # only pages with charts pay for the import

    cols = st.columns(columns)
    for index, chart in enumerate(dict.fromkeys(trends["chart"])):
        data = chart_frame(trends[trends["chart"] == chart], ["series"])
        fig = px.line(data, x="ts", y="value", color="series", title=chart, markers=len(data) < 30)
        fig.update_xaxes(range=time_window(hours))  # the chosen range, even with one point
        fig.update_layout(
            height=height, margin={"l": 10, "r": 10, "t": 40, "b": 10}, xaxis_title=None, yaxis_title=None,
            legend={"orientation": "h", "y": -0.25, "title": None},
        )  # fmt: skip
        cols[index % columns].plotly_chart(fig, key=f"{key}_{chart}")
