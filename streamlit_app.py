"""FleetOTA operations dashboard: the frame (sidebar, backend link, navigation) around pages/."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from pages import _ui
from pages._sidebar import alerts_feed, backend_badge, operator_box, start_demo_fleet_once

# A local favicon: a material-icon favicon would be fetched from the internet.
st.set_page_config(
    page_title="FleetOTA", page_icon=str(Path(__file__).parent / "static" / "favicon.png"), layout="wide"
)

SECTIONS = {
    "Fleet": [
        st.Page("pages/overview.py", title="Overview", icon=":material/dashboard:", default=True),
        st.Page("pages/fleet_map.py", title="Fleet map", icon=":material/map:", url_path="fleet_map"),
        st.Page("pages/vehicles.py", title="Vehicles", icon=":material/directions_car:", url_path="vehicles"),
    ],
    "Updates": [
        st.Page(
            "pages/campaigns.py", title="Campaigns", icon=":material/rocket_launch:", url_path="campaigns"
        ),
        st.Page("pages/firmware.py", title="Firmware", icon=":material/memory:", url_path="firmware"),
        st.Page("pages/compliance.py", title="Compliance", icon=":material/verified:", url_path="compliance"),
    ],
    "Operations": [
        st.Page(
            "pages/monitoring.py", title="Monitoring", icon=":material/monitoring:", url_path="monitoring"
        ),
        st.Page(
            "pages/simulator.py", title="Simulator", icon=":material/sports_esports:", url_path="simulator"
        ),
    ],
}

# The menu is drawn below with page links: with `client.showSidebarNavigation = false` (see
# .streamlit/config.toml) Streamlit never lists the files of pages/ (helpers included) as pages to a
# first visitor before st.navigation has run, and that setting also hides st.navigation's own menu.
page = st.navigation(SECTIONS, position="hidden")
_ui.mark_frame()

with st.sidebar:
    for section, pages in SECTIONS.items():
        st.caption(section)
        for entry in pages:
            st.page_link(entry)
    connected = False
    with _ui.guard("the backend"):
        backend = _ui.backend()
        connected = True
        backend_badge(backend)
        if backend.settings.is_local:
            start_demo_fleet_once(backend)
    operator_box(_ui.backend().settings if connected else None)
    if connected:
        alerts_feed()

if connected:
    # The one place page-level backend failures become a banner rather than a traceback.
    with _ui.guard(page.title):
        page.run()
else:
    st.title("FleetOTA")
    st.warning(
        "The dashboard cannot reach its backend. Locally, start it with `bash scripts/run.sh` or "
        "`python -m fleetota_core local up`; for AWS set FLEETOTA_MODE=aws and FLEETOTA_STACK.",
        icon=":material/power_off:",
    )
