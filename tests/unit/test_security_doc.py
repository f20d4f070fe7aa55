"""docs/security.md names, for each threat, the test that proves its defence: every one must exist."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
REFERENCE = re.compile(r"`((?:unit|integration|e2e)/[a-z_0-9]+\.py)(?:::([a-z_0-9]+))?`")


def test_every_test_the_threats_table_names_exists() -> None:
    text = (ROOT / "docs" / "security.md").read_text()
    references = set(REFERENCE.findall(text))
    assert len(references) >= 40, "the threats table names its tests as `unit/file.py::test_name`"
    missing = [
        f"{path}::{name}" if name else path
        for path, name in sorted(references)
        if not (ROOT / "tests" / path).exists()
        or (name and f"def {name}(" not in (ROOT / "tests" / path).read_text())
    ]
    assert not missing, f"docs/security.md names tests that do not exist: {missing}"
