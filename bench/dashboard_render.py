"""Server-side render time of the fleet map and vehicles pages at 1,000, 10,000 and 100,000 vehicles.

    .venv/bin/python bench/dashboard_render.py [--sizes 1000 10000 100000] [--repeats 3] [--browser]

Starts moto in this process on a free port, provisions it from infra/template.yaml and, for each
size, writes a fleet snapshot of N synthetic but valid vehicles (real WMIs, check digits, metro
positions) where the pipeline writes it (``snapshots/fleet/latest.ndjson.gz``). Then it renders each
page with Streamlit's AppTest through ``streamlit_app.py``, exactly as a browser session would run it:

* cold: the first run after the caches are cleared (reads and parses the snapshot from S3);
* warm: median of ``--repeats`` reruns inside the cache TTL (what each live refresh costs).

The baseline is the 1,000-vehicle warm time; each row prints its ratio to it. The target is < 2 s at
10,000 vehicles. With ``--browser`` it also runs ``streamlit run`` and times a headless Chromium
from navigation to the map's markers being drawn (offline topojson included).
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# Runnable from a fresh clone without installing the package.
sys.path.insert(0, str(REPO))

import pandas as pd  # noqa: E402
import requests  # noqa: E402

from fleetota_core.adapters.clients import client_factory  # noqa: E402
from fleetota_core.adapters.fleet_snapshot import time_bound_key, write_fleet_snapshot  # noqa: E402
from fleetota_core.domain.vehicle import battery_category  # noqa: E402
from fleetota_core.local.provision import provision  # noqa: E402
from fleetota_core.local.sample_fleet import sample_fleet  # noqa: E402
from fleetota_core.local.server import start_moto  # noqa: E402
from fleetota_core.local.stack_spec import read_stack_spec  # noqa: E402
from fleetota_core.services.ingest.fleet_health import merge_rows  # noqa: E402
from fleetota_core.settings import Settings  # noqa: E402

PAGES = {"fleet map": "pages/fleet_map.py", "vehicles": "pages/vehicles.py"}
TARGET_S = 2.0


def snapshot_rows(n: int) -> dict:
    """The sample fleet as the update manager's snapshot rows (keeping the sample's ``online``)."""
    fleet = sample_fleet(n, seed=n)
    fleet["battery_category"] = fleet["soc_pct"].map(lambda s: battery_category(s).value)
    fleet["needs_update"] = fleet["firmware_version"] != "2.0.0"
    fleet["newest_compatible"] = "2.0.0"
    fleet["last_ts"] = pd.to_datetime(fleet["last_ts"], utc=True).dt.floor("ms")
    fleet["last_seq"] = 1
    return merge_rows({}, fleet.to_dict("records"))


def render_times(page: str, repeats: int, n: int) -> tuple[float, float]:
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(REPO / "streamlit_app.py"), default_timeout=300)
    at.run()  # the landing page first, as a visitor arrives
    at.switch_page(page)
    st.cache_data.clear()  # cold: the page reads and parses the snapshot itself
    started = time.perf_counter()
    at.run()
    cold = time.perf_counter() - started
    if at.exception:
        raise SystemExit(f"{page} raised: {at.exception[0].value}")
    shown = [c.value for c in at.caption if f"of {n:,} vehicles" in c.value]
    if not shown:
        raise SystemExit(f"{page} did not show the {n:,}-vehicle fleet: {[c.value for c in at.caption]}")
    warm = []
    for _ in range(repeats):
        started = time.perf_counter()
        at.run()
        warm.append(time.perf_counter() - started)
    return cold, statistics.median(warm)


def _answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=2).status_code == 200
    except requests.ConnectionError:
        return False


def browser_load_time(port: int, n: int) -> float:
    """Seconds from navigation to the fleet map's markers and land outlines in headless Chromium."""
    from playwright.sync_api import sync_playwright

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        app_port = probe.getsockname()[1]
    env = {**os.environ, "FLEETOTA_LOCAL_PORT": str(port), "FLEETOTA_DEMO_FLEET": "0"}
    server = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "streamlit_app.py", "--server.port", str(app_port),
         "--server.headless", "true"],
        cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while not _answers(f"http://127.0.0.1:{app_port}/_stcore/health"):
            if time.monotonic() > deadline:
                raise SystemExit("streamlit did not start within 60 s")
            time.sleep(0.3)
        with sync_playwright() as p:
            browser = p.chromium.launch(
                executable_path="/usr/bin/chromium", args=["--headless", "--no-sandbox", "--disable-gpu"]
            )
            page = browser.new_page(viewport={"width": 1500, "height": 1000})
            page.goto(f"http://127.0.0.1:{app_port}/")  # warm the server's first session
            page.wait_for_selector("h1", timeout=120_000)
            started = time.perf_counter()
            page.goto(f"http://127.0.0.1:{app_port}/fleet_map")
            page.locator(".js-plotly-plot .geo .land").first.wait_for(state="attached", timeout=300_000)
            page.locator(".js-plotly-plot path.point").nth(min(n, 1000) - 1).wait_for(
                state="attached", timeout=300_000
            )
            elapsed = time.perf_counter() - started
            browser.close()
        return elapsed
    finally:
        server.terminate()
        server.wait(timeout=20)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000, 10_000, 100_000])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--browser", action="store_true", help="also time headless Chromium (slow)")
    args = parser.parse_args()

    server = start_moto("127.0.0.1", 0)
    _, port = server.get_host_and_port()
    os.environ.update({"FLEETOTA_LOCAL_PORT": str(port), "FLEETOTA_DEMO_FLEET": "0"})
    os.environ.setdefault("FLEETOTA_STATE_DIR", "/tmp/fleetota-bench-state")
    settings = Settings()
    clients = client_factory(settings)
    spec = read_stack_spec(settings)
    provision(spec, clients)
    print(f"{'vehicles':>9} {'page':>10} {'cold s':>8} {'warm s':>8} {'x 1k warm':>10} {'< 2 s':>6}")
    baseline: dict[str, float] = {}
    rows = []
    try:
        for n in args.sizes:
            bucket = spec.resources.telemetry_bucket
            now = datetime.now(UTC)
            write_fleet_snapshot(clients.s3, bucket, snapshot_rows(n), now, time_bound_key(now), now)
            for name, page in PAGES.items():
                cold, warm = render_times(page, args.repeats, n)
                baseline.setdefault(name, warm)
                ok = "yes" if max(cold, warm) < TARGET_S else "no"
                print(f"{n:>9,} {name:>10} {cold:>8.2f} {warm:>8.2f} {warm / baseline[name]:>10.1f} {ok:>6}")
                rows.append((n, name, cold, warm))
            if args.browser:
                print(f"{n:>9,} {'browser':>10} {browser_load_time(port, n):>8.2f} s to markers and outlines")
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
