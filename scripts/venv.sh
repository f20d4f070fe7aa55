#!/usr/bin/env bash
# Creates .venv when missing and installs a requirements file into it when that file changed, with the
# versions pinned in requirements.lock (pip constraints), so every machine and CI get the same packages.
# Usage: source scripts/venv.sh requirements.txt
set -euo pipefail
req="${1:-requirements.txt}"
PYTHON="${PYTHON:-python3}"
if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
  echo "FleetOTA needs Python 3.11 or newer; set PYTHON=/path/to/python3.11" >&2
  exit 1
fi
if [ ! -x .venv/bin/python ]; then
  echo "==> creating .venv"
  "$PYTHON" -m venv .venv
fi
stamp=".venv/.installed-$(basename "$req")"
want="$(cat requirements*.txt requirements.lock pyproject.toml | sha256sum | cut -d' ' -f1)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "==> installing $req into .venv"
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -c requirements.lock -r "$req" -e .
  echo "$want" > "$stamp"
fi
