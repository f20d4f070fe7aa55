"""Third-party dependencies for a Lambda package, installed for Lambda's platform and cached by content.

``pip install --platform ... --only-binary=:all: --target`` fetches the wheels Lambda's Python runtime
needs whatever the build machine is. The result is cached under ``.fleetota/build/deps/<hash>`` so
repeated deploys and test runs download nothing.
"""

from __future__ import annotations

import hashlib
import json
import platform
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from fleetota_core.errors import DeployError

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    Runner = Callable[[Sequence[str]], subprocess.CompletedProcess[str]]

LAMBDA_PYTHON_VERSION = "3.12"
ARCHITECTURES = ("x86_64", "arm64")
# Lambda's python3.12 runs on Amazon Linux 2023 (glibc 2.34): any manylinux wheel up to 2_34 loads.
_GLIBC_TAGS = ("manylinux_2_34", "manylinux_2_28", "manylinux_2_17", "manylinux2014")
_MACHINE = {"x86_64": "x86_64", "arm64": "aarch64"}
_COMPLETE_MARKER = ".fleetota-complete"


@dataclass(frozen=True)
class PackageTarget:
    """The interpreter and CPU a package is built for."""

    architecture: str = "arm64"
    python_version: str = LAMBDA_PYTHON_VERSION

    def __post_init__(self) -> None:
        if self.architecture not in ARCHITECTURES:
            raise DeployError(
                f"unknown Lambda architecture {self.architecture!r}: use one of {', '.join(ARCHITECTURES)}"
            )

    @property
    def platforms(self) -> list[str]:
        machine = _MACHINE[self.architecture]
        return [f"{tag}_{machine}" for tag in _GLIBC_TAGS]

    @property
    def label(self) -> str:
        return f"{self.architecture}-py{self.python_version}"

    @classmethod
    def lambda_runtime(cls, architecture: str) -> PackageTarget:
        """Lambda's python3.12 runtime on ``architecture``."""
        return cls(architecture=architecture)

    @classmethod
    def host(cls) -> PackageTarget:
        """This machine's interpreter, so a package can be imported here to test it."""
        machine = platform.machine().lower()
        architecture = "arm64" if machine in {"aarch64", "arm64"} else "x86_64"
        return cls(architecture=architecture, python_version=f"{sys.version_info[0]}.{sys.version_info[1]}")


def _run_pip(command: Sequence[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, capture_output=True, text=True, check=False)


def pip_command(pins: Sequence[str], target: PackageTarget, destination: Path) -> list[str]:
    """The pip invocation that installs ``pins`` as wheels for ``target`` into ``destination``."""
    command = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    command += ["--no-compile", "--only-binary=:all:", "--implementation", "cp"]
    command += ["--python-version", target.python_version, "--target", str(destination)]
    for tag in target.platforms:
        command += ["--platform", tag]
    return [*command, *pins]


def cache_key(pins: Sequence[str], target: PackageTarget) -> str:
    payload = json.dumps(
        {"pins": sorted(pins), "platforms": target.platforms, "python": target.python_version}
    )
    return hashlib.sha256(payload.encode()).hexdigest()[:20]


def install_dependencies(
    pins: Sequence[str], target: PackageTarget, cache_dir: Path, run: Runner = _run_pip
) -> Path:
    """A directory holding ``pins`` installed for ``target``; built once per distinct pin set.

    Parameters
    ----------
    pins
        ``name==version`` requirements.
    target
        Interpreter version and architecture to fetch wheels for.
    cache_dir
        Parent of the cached installs (``.fleetota/build/deps``).
    run
        Runs the pip command; injected by tests.
    """
    destination = cache_dir / f"{target.label}-{cache_key(pins, target)}"
    if (destination / _COMPLETE_MARKER).is_file():
        return destination
    cache_dir.mkdir(parents=True, exist_ok=True)
    # Install beside the cache entry, then rename: an interrupted build never looks complete.
    staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=cache_dir))
    try:
        if pins:
            result = run(pip_command(pins, target, staging))
            if result.returncode != 0:
                detail = (result.stderr or result.stdout or "").strip().splitlines()[-3:]
                raise DeployError(
                    f"pip could not install the Lambda dependencies for {target.label} "
                    f"({', '.join(pins)}): {' / '.join(detail) or 'exit code ' + str(result.returncode)}"
                )
        (staging / _COMPLETE_MARKER).write_text(json.dumps({"pins": list(pins)}))
        if (destination / _COMPLETE_MARKER).is_file():
            return destination  # a concurrent build finished first and may be zipping from it: keep it
        if destination.exists():
            shutil.rmtree(destination)  # an interrupted build's leftovers
        try:
            staging.rename(destination)
        except OSError:
            if not (destination / _COMPLETE_MARKER).is_file():
                raise  # no concurrent build won the race: a real failure
    finally:
        if staging.exists():
            shutil.rmtree(staging)
    return destination
