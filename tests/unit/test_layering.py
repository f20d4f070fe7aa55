"""Pages and the app frame call ``fleetota_core.views`` only, plus the shared kernel (errors, settings).

import-linter checks ``pages`` (pyproject.toml); this test also covers ``streamlit_app.py``, which no
package holds, and states the rule as an allowlist, so a new ``fleetota_core`` module is not open to
pages by default. The known exceptions are the pages contract's ``ignore_imports``, read from there.
"""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterator

REPO = Path(__file__).resolve().parents[2]
ALLOWED = ("fleetota_core.views", "fleetota_core.errors", "fleetota_core.settings")
PAGES_CONTRACT = "pages import only fleetota_core.views, errors and settings"


def _known_exceptions() -> set[tuple[str, str]]:
    config = tomllib.loads((REPO / "pyproject.toml").read_text())
    (contract,) = [c for c in config["tool"]["importlinter"]["contracts"] if c["name"] == PAGES_CONTRACT]
    pairs = (rule.split("->") for rule in contract.get("ignore_imports", []))
    return {(importer.strip(), imported.strip()) for importer, imported in pairs}


def _runtime_imports(tree: ast.AST) -> Iterator[tuple[str, ...]]:
    """For each import outside ``if TYPE_CHECKING:``, the dotted names it may refer to, widest first."""
    stack: list[ast.AST] = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.If) and getattr(node.test, "id", None) == "TYPE_CHECKING":
            stack.extend(node.orelse)
            continue
        if isinstance(node, ast.Import):
            yield from ((alias.name,) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            yield from ((node.module, f"{node.module}.{alias.name}") for alias in node.names)
        stack.extend(ast.iter_child_nodes(node))


def _allowed(name: str) -> bool:
    return not name.startswith("fleetota_core") or any(
        name == prefix or name.startswith(f"{prefix}.") for prefix in ALLOWED
    )


def test_pages_and_the_app_frame_import_only_views_errors_and_settings_of_fleetota_core():
    # Given every page and the frame that runs them
    entrypoints = {f"pages.{p.stem}": p for p in sorted((REPO / "pages").glob("*.py"))}
    entrypoints["streamlit_app"] = REPO / "streamlit_app.py"
    known = _known_exceptions()
    # When their runtime imports are read
    violations = [
        f"{module} -> {names[0]}"
        for module, path in entrypoints.items()
        for names in _runtime_imports(ast.parse(path.read_text(), filename=str(path)))
        if not _allowed(names[0]) and not any((module, name) in known for name in names)
    ]
    # Then none reaches past the views, except the known list being worked off
    assert violations == []


def test_the_allowlist_test_catches_a_page_importing_a_service():
    tree = ast.parse("from fleetota_core.services.campaigns import actions\nimport fleetota_core.domain\n")
    assert {names[0] for names in _runtime_imports(tree) if not _allowed(names[0])} == {
        "fleetota_core.services.campaigns",
        "fleetota_core.domain",
    }
