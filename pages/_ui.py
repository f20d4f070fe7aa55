"""What every page shares: the backend link, the one place backend errors become banners, the operator."""

from __future__ import annotations

from contextlib import contextmanager
from typing import TYPE_CHECKING

import streamlit as st
from botocore.exceptions import BotoCoreError, ClientError

from fleetota_core.errors import BackendUnavailableError, FleetOTAError, ValidationError
from fleetota_core.settings import Settings
from fleetota_core.views.backend import Backend, connect, start_local_stack
from fleetota_core.views.fleet import fleet_frame

if TYPE_CHECKING:
    from collections.abc import Iterator

    import pandas as pd

FLEET_TTL_S = 15
LIVE_REFRESH_S = 15


@st.cache_resource(show_spinner="Connecting to the FleetOTA backend…")
def _connect(settings_json: str) -> Backend:
    # Once per server process and settings: starting the local stack is not something to repeat per rerun.
    settings = Settings.model_validate_json(settings_json)
    status = start_local_stack(settings) if settings.is_local else ""
    return connect(settings, status)


def backend() -> Backend:
    """The backend this server process is connected to (local stack started on first use)."""
    return _connect(Settings().model_dump_json())


def backend_error_message(exc: BaseException) -> str:
    if isinstance(exc, BackendUnavailableError):
        return f"Backend unreachable: {exc}"
    if isinstance(exc, FleetOTAError):
        return str(exc)
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        return f"AWS {error.get('Code', 'error')}: {error.get('Message', '')}"
    return f"Backend unreachable: {exc}. Is the local stack running? (`python -m fleetota_core local up`)"


@contextmanager
def guard(what: str = "this page") -> Iterator[None]:
    """Show backend failures as a banner instead of a traceback; the rest of the page still renders."""
    try:
        yield
    except ValidationError as exc:
        st.warning(f"{what}: {exc}", icon="⚠️")
    except (FleetOTAError, BotoCoreError, ClientError) as exc:
        st.error(f"Could not load {what}. {backend_error_message(exc)}", icon="🚨")


@st.cache_data(ttl=FLEET_TTL_S, show_spinner="Loading the fleet…")
def _fleet(key: str, _backend: Backend) -> pd.DataFrame:
    return fleet_frame(_backend.clients, _backend.resources)


def fleet() -> pd.DataFrame:
    """Every vehicle's latest state (normalized), cached for a few seconds."""
    b = backend()
    return _fleet(b.key, b)


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
            icon="🔒",
        )
    return name


def empty_state(message: str, icon: str = "💡") -> None:
    st.info(message, icon=icon)
