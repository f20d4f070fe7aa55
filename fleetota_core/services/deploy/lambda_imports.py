"""What a Lambda handler really imports: the ``fleetota_core`` modules and the third-party distributions.

A handler's package holds only its import closure, so the dashboard, the local stack and the CLI
never ship to Lambda, and a new import in a service is picked up without editing a list.
"""

from __future__ import annotations

import ast
import sys
from dataclasses import dataclass, field
from importlib import metadata
from typing import TYPE_CHECKING

from fleetota_core.errors import DeployError

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator
    from pathlib import Path

CORE_PACKAGE = "fleetota_core"
# The Lambda Python runtime ships these; bundling them would add ~80 MB unzipped for nothing.
RUNTIME_PROVIDED = frozenset({"boto3", "botocore", "s3transfer"})
# The dashboard's data stack: about 180 MB unzipped and seconds of cold start; no handler may need it.
DASHBOARD_ONLY = ("pandas", "pyarrow", "numpy")


@dataclass
class ImportClosure:
    """Files of ``fleetota_core`` a handler reaches, and the third-party top-level modules it needs."""

    core_files: set[Path] = field(default_factory=set)
    third_party: set[str] = field(default_factory=set)
    importers: dict[str, set[Path]] = field(default_factory=dict)  # third-party module -> files importing it


def _is_type_checking_guard(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imported_names(tree: ast.AST, package: str) -> Iterator[str]:
    """Dotted module names imported anywhere in ``tree`` (functions too), except type-checking-only ones."""
    stack: list[ast.AST] = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.If) and _is_type_checking_guard(node):
            stack.extend(node.orelse)
            continue
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{parent}.{base}" if base else parent
            yield base
            # `from pkg import name` may name a submodule; resolution skips names that are not files.
            yield from (f"{base}.{alias.name}" for alias in node.names)
        stack.extend(ast.iter_child_nodes(node))


def _module_file(root: Path, dotted: str) -> Path | None:
    path = root.joinpath(*dotted.split("."))
    if (path / "__init__.py").is_file():
        return path / "__init__.py"
    if path.with_suffix(".py").is_file():
        return path.with_suffix(".py")
    return None


def _package_of(root: Path, file: Path) -> str:
    # The package a file's relative imports are resolved against (for __init__.py: its own package).
    return ".".join(file.relative_to(root).with_suffix("").parts[:-1])


def import_closure(entry_files: Iterable[Path], root: Path) -> ImportClosure:
    """Follow imports from ``entry_files`` through ``root/fleetota_core``; collect what lies outside.

    Parameters
    ----------
    entry_files
        The handler module(s), inside ``root``.
    root
        The repository root, which holds ``fleetota_core/``.
    """
    closure = ImportClosure()
    pending = list(entry_files)
    seen: set[Path] = set()
    while pending:
        file = pending.pop()
        if file in seen:
            continue
        seen.add(file)
        tree = ast.parse(file.read_text(encoding="utf-8"), filename=str(file))
        for dotted in _imported_names(tree, _package_of(root, file)):
            top = dotted.split(".")[0]
            if top == CORE_PACKAGE:
                parts = dotted.split(".")
                # Every enclosing package's __init__ runs on import, so it ships too.
                for depth in range(1, len(parts) + 1):
                    module = _module_file(root, ".".join(parts[:depth]))
                    if module is not None and module not in closure.core_files:
                        closure.core_files.add(module)
                        pending.append(module)
            elif top and top not in sys.stdlib_module_names and top != "lambdas":
                closure.third_party.add(top)
                closure.importers.setdefault(top, set()).add(file)
    return closure


def refuse_dashboard_libraries(closure: ImportClosure, root: Path) -> None:
    """Raise :class:`DeployError` naming the files if a handler's closure imports pandas, pyarrow or numpy."""
    found = sorted(set(DASHBOARD_ONLY) & closure.third_party)
    if found:
        where = "; ".join(
            f"{name} by {', '.join(sorted(f.relative_to(root).as_posix() for f in closure.importers[name]))}"
            for name in found
        )
        raise DeployError(
            f"a Lambda handler must not import the dashboard's data libraries ({where}): "
            "they put the package over its size budget; work on plain Python structures instead"
        )


def requirement_pins(top_level_modules: Iterable[str]) -> list[str]:
    """``name==version`` for each distribution providing these modules, at the versions installed here.

    Pinning to the local versions makes Lambda run what the tests ran. Runtime-provided
    distributions (boto3, botocore) are left out.
    """
    providers = metadata.packages_distributions()
    pins: set[str] = set()
    for module in top_level_modules:
        distributions = providers.get(module)
        if not distributions:
            raise DeployError(
                f"a Lambda handler imports {module!r} but no installed distribution provides it; "
                "add it to requirements.txt and install it into .venv"
            )
        for name in distributions:
            if name.lower() in RUNTIME_PROVIDED:
                continue
            pins.add(f"{name}=={metadata.version(name)}")
    return sorted(pins, key=str.lower)
