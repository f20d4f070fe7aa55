"""Sample Lambda events in AWS's exact shapes, loaded by name: ``load_event("sqs_s3_object_created")``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

EVENTS_DIR = Path(__file__).resolve().parent


def load_event(name: str) -> dict[str, Any]:
    """The JSON event ``tests/events/<name>.json``."""
    return json.loads((EVENTS_DIR / f"{name}.json").read_text(encoding="utf-8"))
