"""Browser fixtures: a local stack and ``streamlit run`` as subprocesses, and headless Chromium."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import requests

if TYPE_CHECKING:
    from collections.abc import Iterator

REPO = Path(__file__).resolve().parents[2]
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/e2e/" in str(item.fspath).replace("\\", "/"):
            item.add_marker(pytest.mark.e2e)
            item.add_marker(pytest.mark.slow)


def chromium_path() -> str | None:
    for candidate in (os.environ.get("FLEETOTA_CHROMIUM"), shutil.which("chromium"), "/usr/bin/chromium"):
        if candidate and Path(candidate).exists():
            return candidate
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _stop(process: subprocess.Popen) -> None:
    # Each was started in its own session by this fixture; stop exactly that process group.
    if process.poll() is None:
        os.killpg(process.pid, 15)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, 9)
            process.wait(timeout=5)


@dataclass
class Dashboard:
    url: str
    env: dict[str, str]
    state_dir: Path
    logs: Path


@pytest.fixture(scope="module")
def dashboard(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dashboard]:
    """A provisioned local stack (with its runtime) and the dashboard served by ``streamlit run``."""
    work = tmp_path_factory.mktemp("e2e")
    stack_port, app_port = free_port(), free_port()
    env = {
        **os.environ,
        "FLEETOTA_MODE": "local",
        "FLEETOTA_LOCAL_HOST": "127.0.0.1",
        "FLEETOTA_LOCAL_PORT": str(stack_port),
        "FLEETOTA_DEMO_FLEET": "0",
        "FLEETOTA_STATE_DIR": str(work / "state"),
        "FLEETOTA_OPERATOR": "e2e-operator",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "PYTHONUNBUFFERED": "1",
    }
    python = sys.executable
    processes: list[subprocess.Popen] = []
    try:
        with (work / "stack.log").open("wb") as log:
            processes.append(
                subprocess.Popen(
                    [python, "-m", "fleetota_core", "local", "up", "--port", str(stack_port)],
                    cwd=REPO,
                    env=env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            )
        subprocess.run(
            [python, "-m", "fleetota_core", "local", "wait", "--timeout", "90"], cwd=REPO, env=env, check=True
        )
        with (work / "app.log").open("wb") as log:
            processes.append(
                subprocess.Popen(
                    [
                        python,
                        "-m",
                        "streamlit",
                        "run",
                        "streamlit_app.py",
                        "--server.port",
                        str(app_port),
                        "--server.headless",
                        "true",
                        "--browser.gatherUsageStats",
                        "false",
                    ],
                    cwd=REPO,
                    env=env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            )
        url = f"http://127.0.0.1:{app_port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                if requests.get(f"{url}/_stcore/health", timeout=2).status_code == 200:
                    break
            except requests.ConnectionError:
                pass  # not listening yet
            if time.monotonic() > deadline:
                raise RuntimeError(f"streamlit did not start; see {work / 'app.log'}")
            time.sleep(0.3)
        yield Dashboard(url=url, env=env, state_dir=work / "state", logs=work)
    finally:
        from fleetota_core.local.simulator_process import stop_simulator

        stop_simulator(work / "state")
        for process in reversed(processes):
            _stop(process)


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    executable = chromium_path()
    if executable is None:
        message = "Chromium not found (install it or set FLEETOTA_CHROMIUM)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()
