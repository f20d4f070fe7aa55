#!/usr/bin/env bash
# Test FleetOTA: refresh .venv, install test tools and Chromium if missing, lint, run the whole suite.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/venv.sh requirements-dev.txt
if ! command -v chromium >/dev/null 2>&1 && [ ! -x /usr/bin/chromium ]; then
  if command -v apt-get >/dev/null 2>&1; then
    echo "==> installing Chromium for the browser tests"
    SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium >/dev/null
  else
    echo "warning: no apt-get; install Chromium yourself or set FLEETOTA_CHROMIUM" >&2
  fi
fi
echo "==> ruff"
.venv/bin/ruff check .
.venv/bin/ruff format --check .
echo "==> cfn-lint"
.venv/bin/cfn-lint infra/template.yaml
echo "==> import contracts"
.venv/bin/lint-imports
echo "==> mypy"
.venv/bin/mypy
echo "==> pytest"
# Two pytest-xdist workers (each test that needs one starts its own local stack on free ports), the
# longest tests first (tests/conftest.py) and an idle worker taking queued tests from a busy one;
# FLEETOTA_TEST_WORKERS=0 runs everything in this process.
.venv/bin/python -m pytest -n "${FLEETOTA_TEST_WORKERS:-2}" --dist worksteal "$@"
