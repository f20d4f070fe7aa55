"""Server-side render time of the fleet map and vehicles pages at 1,000, 100,000 and 1,000,000 vehicles.

    .venv/bin/python bench/dashboard_render.py [--sizes 1000 100000 1000000] [--repeats 3] [--browser]

Starts moto in this process on a free port, provisions it from infra/template.yaml and, for each
size, writes a fleet snapshot of N synthetic but valid vehicles (real WMIs, check digits, metro
positions) where the pipeline writes it (``snapshots/fleet/latest.ndjson.gz``). Then it renders each
page with Streamlit's AppTest through ``streamlit_app.py``, exactly as a browser session would run it:

* cold: the first run after the caches are cleared (reads and parses the snapshot from S3);
* warm: median of ``--repeats`` reruns inside the cache TTL (what each live refresh costs);
* filter: the rerun after picking one model in the page's Model filter (a view not cached yet, on
  the parsed fleet: what an operator's click costs).

The baseline is the 1,000-vehicle warm time; each row prints its ratio to it. The target is < 2 s
(issue #16: at 1,000,000 vehicles). With ``--browser`` it also runs ``streamlit run`` and times a
headless Chromium (median of ``--repeats`` navigations, after one that warms the server's caches)
from navigation until each page is drawn: the map's land outlines (offline topojson) and every marker
of its figure, the vehicles table's grid and caption. Issue #16's goals: at 1,000 vehicles at most
3 s a page, at 1,000,000 at most 1.5 times that.
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

import requests  # noqa: E402

from fleetota_core.adapters.clients import client_factory  # noqa: E402
from fleetota_core.adapters.fleet_snapshot import time_bound_key, write_fleet_snapshot  # noqa: E402
from fleetota_core.local.provision import provision  # noqa: E402
from fleetota_core.local.sample_fleet import sample_snapshot_rows  # noqa: E402
from fleetota_core.local.server import start_moto  # noqa: E402
from fleetota_core.local.stack_spec import read_stack_spec  # noqa: E402
from fleetota_core.settings import Settings  # noqa: E402

PAGES = {"fleet map": "pages/fleet_map.py", "vehicles": "pages/vehicles.py"}
FILTERS = {"fleet map": "map_models", "vehicles": "veh_models"}
URLS = {"fleet map": "fleet_map", "vehicles": "vehicles"}
TARGET_S = 2.0
BROWSER_TARGET_S = 3.0


def render_times(name: str, repeats: int, n: int) -> tuple[float, float, float]:
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(REPO / "streamlit_app.py"), default_timeout=600)
    at.run()  # the landing page first, as a visitor arrives
    at.switch_page(PAGES[name])
    from pages import _ui

    st.cache_data.clear()  # cold: the page reads and parses the snapshot itself
    _ui.forget_fleet()
    started = time.perf_counter()
    at.run()
    cold = time.perf_counter() - started
    if at.exception:
        raise SystemExit(f"{name} raised: {at.exception[0].value}")
    shown = [c.value for c in at.caption if f"of {n:,} vehicles" in c.value]
    if not shown:
        raise SystemExit(f"{name} did not show the {n:,}-vehicle fleet: {[c.value for c in at.caption]}")
    warm = []
    for _ in range(repeats):
        started = time.perf_counter()
        at.run()
        warm.append(time.perf_counter() - started)
    models = at.multiselect(key=FILTERS[name])
    models.set_value([models.options[0]])
    started = time.perf_counter()
    at.run()
    filtered = time.perf_counter() - started
    if at.exception:
        raise SystemExit(f"{name} raised after filtering: {at.exception[0].value}")
    return cold, statistics.median(warm), filtered


def _answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=2).status_code == 200
    except requests.ConnectionError:
        return False


# Drawn: the land outlines and as many marker paths as the figure's traces have points.
_MAP_DRAWN = """() => {
  const gd = document.querySelector('.js-plotly-plot');
  if (!gd || !gd._fullData || !gd.querySelector('.geo .land')) return false;
  const wanted = gd._fullData.reduce((sum, trace) => sum + (trace.lat ? trace.lat.length : 0), 0);
  return wanted > 0 && gd.querySelectorAll('path.point').length >= wanted;
}"""


def _wait_drawn(page, name: str, n: int) -> None:
    if name == "fleet map":
        page.wait_for_function(_MAP_DRAWN, timeout=300_000, polling=50)
    else:
        page.locator("[data-testid='stDataFrame'] canvas").first.wait_for(state="attached", timeout=300_000)
    page.get_by_text(f"of {n:,} vehicles", exact=False).first.wait_for(timeout=300_000)


def browser_load_times(port: int, n: int, repeats: int) -> dict[str, float]:
    """Median seconds from navigation until each page is drawn in headless Chromium."""
    from playwright.sync_api import sync_playwright

    sys.path.insert(0, str(REPO / "tests" / "e2e"))
    from conftest import CHROMIUM_ARGS  # the browser tests' flags

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        app_port = probe.getsockname()[1]
    env = {**os.environ, "FLEETOTA_LOCAL_PORT": str(port), "FLEETOTA_DEMO_FLEET": "0"}
    server = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "streamlit_app.py", "--server.port", str(app_port),
         "--server.headless", "true"],
        cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    times: dict[str, float] = {}
    try:
        deadline = time.monotonic() + 60
        while not _answers(f"http://127.0.0.1:{app_port}/_stcore/health"):
            if time.monotonic() > deadline:
                raise SystemExit("streamlit did not start within 60 s")
            time.sleep(0.3)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1500, "height": 1000})
            page.goto(f"http://127.0.0.1:{app_port}/")  # warm the server's first session
            page.wait_for_selector("h1", timeout=600_000)
            for name, path in URLS.items():
                runs = []
                for attempt in range(repeats + 1):  # the first one reads the snapshot into the caches
                    started = time.perf_counter()
                    page.goto(f"http://127.0.0.1:{app_port}/{path}")
                    _wait_drawn(page, name, n)
                    if attempt:
                        runs.append(time.perf_counter() - started)
                times[name] = statistics.median(runs)
            browser.close()
        return times
    finally:
        server.terminate()
        server.wait(timeout=20)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000, 100_000, 1_000_000])
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
    print(f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}", flush=True)
    columns = ("vehicles", 9), ("page", 10), ("cold s", 8), ("warm s", 8), ("filter s", 9), ("x 1k warm", 10)
    print(" ".join(f"{name:>{width}}" for name, width in columns), f"{'< 2 s':>6}", flush=True)
    baseline: dict[str, float] = {}
    browser_baseline: dict[str, float] = {}
    try:
        for n in args.sizes:
            bucket = spec.resources.telemetry_bucket
            now = datetime.now(UTC)
            started = time.perf_counter()
            write_fleet_snapshot(clients.s3, bucket, sample_snapshot_rows(n), now, time_bound_key(now), now)
            print(f"{n:>9,} snapshot written in {time.perf_counter() - started:.1f} s", flush=True)
            for name in PAGES:
                cold, warm, filtered = render_times(name, args.repeats, n)
                baseline.setdefault(name, warm)
                ok = "yes" if max(warm, filtered) < TARGET_S else "no"
                print(
                    f"{n:>9,} {name:>10} {cold:>8.2f} {warm:>8.2f} {filtered:>9.2f} "
                    f"{warm / baseline[name]:>10.1f} {ok:>6}",
                    flush=True,
                )
            if args.browser:
                for name, seconds in browser_load_times(port, n, args.repeats).items():
                    browser_baseline.setdefault(name, seconds)
                    ratio = seconds / browser_baseline[name]
                    print(
                        f"{n:>9,} {name:>10} browser {seconds:.2f} s to drawn, x{ratio:.2f} the first size",
                        flush=True,
                    )
            print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}", flush=True)
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
