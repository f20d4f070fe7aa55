"""Build each Lambda function's deployment zip and check it against Lambda's size limits.

A package holds ``lambdas/<function>/`` at the path the template's ``Handler`` names, the part of
``fleetota_core`` the handler imports, and its third-party dependencies built for Lambda's platform.
Zips are reproducible (sorted entries, fixed timestamps), so the content hash in the S3 key changes
only when the code does and a repeated deploy is a no-op.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from fleetota_core.errors import DeployError
from fleetota_core.services.deploy.lambda_dependencies import PackageTarget, install_dependencies
from fleetota_core.services.deploy.lambda_imports import (
    import_closure,
    refuse_dashboard_libraries,
    requirement_pins,
)

if TYPE_CHECKING:
    from collections.abc import Iterator

    from fleetota_core.services.deploy.lambda_dependencies import Runner

REPO_ROOT = Path(__file__).resolve().parents[3]
BUILD_DIR = REPO_ROOT / ".fleetota" / "build"
FUNCTIONS = ("telemetry_processor", "update_manager")

# Lambda quotas: 50 MB for a zip uploaded directly to the API, 250 MB (262,144,000 bytes) unzipped
# including layers whatever the upload path.
MAX_ZIPPED_BYTES = 50 * 1024 * 1024
MAX_UNZIPPED_BYTES = 250 * 1024 * 1024
# FleetOTA's own budget (issue #16): a small package starts cold fast. Checked by the package tests.
PACKAGE_BUDGET_BYTES = 50 * 1024 * 1024

# Never shipped: bytecode (Lambda compiles on import), tests, type stubs, console scripts, and the
# C/C++/Cython headers and sources that wheels carry for building extensions against them.
EXCLUDED_DIRS = frozenset({"__pycache__", "tests", "test", ".pytest_cache", "bin"})
EXCLUDED_SUFFIXES = frozenset(
    {".pyc", ".pyo", ".pyi", ".h", ".hpp", ".c", ".cc", ".cpp", ".pyx", ".pxd", ".pxi", ".a"}
)
_FIXED_TIMESTAMP = (1980, 1, 1, 0, 0, 0)


@dataclass(frozen=True)
class LambdaPackage:
    """One built zip with the figures the size check and the S3 key need."""

    function: str
    path: Path
    sha256: str
    zipped_bytes: int
    unzipped_bytes: int
    target: PackageTarget

    @property
    def s3_key(self) -> str:
        return f"lambda/{self.function}/{self.target.label}-{self.sha256[:16]}.zip"


def is_shipped(relative: Path) -> bool:
    """Whether a file at this path inside the package belongs in a Lambda zip."""
    if relative.suffix in EXCLUDED_SUFFIXES:
        return False
    # `bin/` only at the top: pip --target puts console scripts there.
    dirs = relative.parts[:-1]
    if dirs[:1] == ("bin",):
        return False
    if relative.name == "conftest.py" or relative.name.startswith("test_") or relative.stem.endswith("_test"):
        return False
    return not any(part in EXCLUDED_DIRS - {"bin"} for part in dirs)


def _tree(base: Path, under: Path) -> Iterator[tuple[Path, Path]]:
    for file in sorted(under.rglob("*")):
        if file.is_file():
            relative = file.relative_to(base)
            if is_shipped(relative) and not relative.name.startswith(".fleetota"):
                yield file, relative


def handler_file(function: str, root: Path) -> Path:
    handler = root / "lambdas" / function / "handler.py"
    if not handler.is_file():
        raise DeployError(f"Lambda handler {handler.relative_to(root)} does not exist")
    return handler


def package_entries(function: str, root: Path, dependencies: Path | None) -> dict[str, Path]:
    """Archive name -> source file, for the handler, its ``fleetota_core`` closure and dependencies."""
    handler = handler_file(function, root)
    entries: dict[str, Path] = {}
    if dependencies is not None:
        entries.update({rel.as_posix(): file for file, rel in _tree(dependencies, dependencies)})
    entries.update({rel.as_posix(): file for file, rel in _tree(root, handler.parent)})
    for module in import_closure([handler], root).core_files:
        relative = module.relative_to(root)
        if is_shipped(relative):
            entries[relative.as_posix()] = module
    return entries


def _fingerprint(entries: dict[str, Path]) -> str:
    digest = hashlib.sha256()
    for name in sorted(entries):
        stat = entries[name].stat()
        digest.update(f"{name}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def write_zip(entries: dict[str, Path], destination: Path) -> None:
    destination.parent.mkdir(parents=True, exist_ok=True)
    # A partial file of its own: two builds of the same package (two deploys, two test workers) must
    # not rename each other's file away; the last complete zip wins (they are identical).
    handle, name = tempfile.mkstemp(prefix=f"{destination.name}.", suffix=".partial", dir=destination.parent)
    os.close(handle)
    partial = Path(name)
    with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=6) as archive:
        for name in sorted(entries):
            info = zipfile.ZipInfo(name, date_time=_FIXED_TIMESTAMP)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            archive.writestr(info, entries[name].read_bytes())
    partial.replace(destination)


def check_size(
    package: LambdaPackage, max_unzipped: int = MAX_UNZIPPED_BYTES, max_zipped: int | None = None
) -> None:
    """Raise :class:`DeployError` naming the limit and the largest parts when a zip is too big.

    ``deploy`` passes code through S3, where only the unzipped limit applies; ``max_zipped``
    (``MAX_ZIPPED_BYTES``) is for zips uploaded straight to the Lambda API.
    """
    problems = []
    if max_zipped is not None and package.zipped_bytes > max_zipped:
        problems.append(f"{_mb(package.zipped_bytes)} zipped exceeds Lambda's {_mb(max_zipped)} limit")
    if package.unzipped_bytes > max_unzipped:
        problems.append(f"{_mb(package.unzipped_bytes)} unzipped exceeds Lambda's {_mb(max_unzipped)} limit")
    if problems:
        raise DeployError(
            f"the {package.function} package is too large: {'; '.join(problems)}; "
            f"largest parts: {_largest_parts(package.path)}"
        )


def _mb(size: int) -> str:
    return f"{size / 1024 / 1024:.1f} MB"


def _largest_parts(path: Path, count: int = 5) -> str:
    sizes: dict[str, int] = {}
    with zipfile.ZipFile(path) as archive:
        for info in archive.infolist():
            top = info.filename.split("/")[0]
            sizes[top] = sizes.get(top, 0) + info.file_size
    ranked = sorted(sizes.items(), key=lambda item: item[1], reverse=True)[:count]
    return ", ".join(f"{name} {_mb(size)}" for name, size in ranked)


def build_package(
    function: str,
    target: PackageTarget,
    root: Path = REPO_ROOT,
    build_dir: Path = BUILD_DIR,
    run: Runner | None = None,
) -> LambdaPackage:
    """Build ``lambdas/<function>`` into ``build_dir/packages/<target>/<function>.zip``.

    Parameters
    ----------
    function
        A directory name under ``lambdas/``.
    target
        Lambda's runtime for a deploy, or :meth:`PackageTarget.host` to import the package here.
    root, build_dir
        The repository and the cache directory; tests point them elsewhere.
    run
        Runs pip; injected by tests.
    """
    closure = import_closure([handler_file(function, root)], root)
    refuse_dashboard_libraries(closure, root)
    pins = requirement_pins(closure.third_party)
    kwargs = {"run": run} if run is not None else {}
    dependencies = install_dependencies(pins, target, build_dir / "deps", **kwargs)
    destination = build_dir / "packages" / target.label / f"{function}.zip"
    entries = package_entries(function, root, dependencies)
    # Zipping ~200 MB takes many seconds; unchanged inputs (names, sizes, mtimes) reuse the last zip.
    fingerprint = _fingerprint(entries)
    stamp = destination.with_suffix(".inputs")
    if not (destination.is_file() and stamp.is_file() and stamp.read_text() == fingerprint):
        write_zip(entries, destination)
        stamp.write_text(fingerprint)
    with zipfile.ZipFile(destination) as archive:
        unzipped = sum(info.file_size for info in archive.infolist())
    package = LambdaPackage(
        function=function,
        path=destination,
        sha256=hashlib.sha256(destination.read_bytes()).hexdigest(),
        zipped_bytes=destination.stat().st_size,
        unzipped_bytes=unzipped,
        target=target,
    )
    check_size(package)
    return package


def build_packages(
    target: PackageTarget, root: Path = REPO_ROOT, build_dir: Path = BUILD_DIR
) -> list[LambdaPackage]:
    """Every FleetOTA function's package for ``target``, size-checked."""
    return [build_package(function, target, root, build_dir) for function in FUNCTIONS]
