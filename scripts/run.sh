#!/usr/bin/env bash
# Run FleetOTA: the embedded local AWS stack (unless FLEETOTA_MODE=aws) and the dashboard on :8501.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/venv.sh requirements.txt
export PYTHONUNBUFFERED=1
stack_pid=""
cleanup() { if [ -n "$stack_pid" ]; then kill "$stack_pid" 2>/dev/null || true; wait "$stack_pid" 2>/dev/null || true; fi; }
trap cleanup EXIT INT TERM
if [ "${FLEETOTA_MODE:-local}" = "local" ]; then
  mkdir -p .fleetota
  echo "==> starting the local AWS stack (log: .fleetota/local-stack.log)"
  .venv/bin/python -m fleetota_core local up > .fleetota/local-stack.log 2>&1 &
  stack_pid=$!
  .venv/bin/python -m fleetota_core local wait --timeout 90
fi
echo "==> dashboard: http://localhost:${FLEETOTA_APP_PORT:-8501}"
.venv/bin/streamlit run streamlit_app.py --server.port "${FLEETOTA_APP_PORT:-8501}" --server.headless true \
  --browser.gatherUsageStats false "$@"
