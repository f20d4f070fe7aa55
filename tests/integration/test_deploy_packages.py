"""The Lambda packages ``deploy`` uploads: they import in a clean interpreter, fit Lambda, carry no dev files.

Lambda runs python3.12; this machine has Python 3.11 and no 3.12 (Debian's apt has none either).
So the import test builds the packages for *this* interpreter through the same code path, changing
only the pip target (``PackageTarget.host()``: ``--python-version 3.11 --platform manylinux..._x86_64``),
and imports them in a fresh ``venv --without-pip`` laid out like Lambda: the package directory first,
then the runtime's own boto3/botocore, then the standard library. The packages for Lambda itself
(python3.12, arm64) are checked by content: size, native-extension tags, handler path, no dev files.
"""

from __future__ import annotations

import os
import zipfile
from importlib import metadata
from typing import TYPE_CHECKING

import pytest

from fleetota_core.services.deploy.lambda_dependencies import PackageTarget, install_dependencies
from fleetota_core.services.deploy.lambda_imports import DASHBOARD_ONLY, RUNTIME_PROVIDED, import_closure
from fleetota_core.services.deploy.lambda_package import (
    BUILD_DIR,
    FUNCTIONS,
    MAX_UNZIPPED_BYTES,
    PACKAGE_BUDGET_BYTES,
    REPO_ROOT,
    LambdaPackage,
    build_packages,
)
from fleetota_core.services.deploy.lambda_probe import clean_python as make_clean_python
from fleetota_core.services.deploy.lambda_probe import extract, import_like_lambda, template_handler

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def host_packages() -> dict[str, LambdaPackage]:
    return {p.function: p for p in build_packages(PackageTarget.host())}


@pytest.fixture(scope="module")
def lambda_packages() -> dict[str, LambdaPackage]:
    return {p.function: p for p in build_packages(PackageTarget.lambda_runtime("arm64"))}


@pytest.fixture(scope="module")
def clean_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_clean_python(tmp_path_factory.mktemp("clean") / "venv")


@pytest.fixture(scope="module")
def runtime_dir() -> Path:
    """boto3 and botocore at this checkout's versions, standing in for the ones Lambda's runtime ships."""
    pins = [f"{name}=={metadata.version(name)}" for name in ("boto3", "botocore")]
    return install_dependencies(pins, PackageTarget.host(), BUILD_DIR / "deps")


@pytest.mark.parametrize("function", FUNCTIONS)
def test_each_handler_imports_from_its_zip_in_a_clean_interpreter_as_lambda_loads_it(
    function: str, host_packages, clean_python: Path, runtime_dir: Path, tmp_path: Path
) -> None:
    task = extract(host_packages[function].path, tmp_path / "task")
    closure = import_closure([REPO_ROOT / "lambdas" / function / "handler.py"], REPO_ROOT)
    # Lazily imported libraries must load too.
    extra = sorted(closure.third_party - RUNTIME_PROVIDED)
    report = import_like_lambda(function, clean_python, task, runtime_dir, extra, os.environ.get("PATH", ""))
    assert report["outside"] == [], "imported from outside the package, the runtime and the stdlib"
    assert report["handler_file"].startswith(str(task))
    assert not set(DASHBOARD_ONLY) & set(report["loaded"]), "a handler loaded the dashboard's data stack"


@pytest.mark.parametrize("function", FUNCTIONS)
def test_each_lambda_package_fits_lambdas_unzipped_limit(function: str, lambda_packages) -> None:
    package = lambda_packages[function]
    with zipfile.ZipFile(package.path) as archive:
        unzipped = sum(info.file_size for info in archive.infolist())
    assert unzipped == package.unzipped_bytes
    assert unzipped < MAX_UNZIPPED_BYTES, f"{function}: {unzipped / 1e6:.1f} MB unzipped"


@pytest.mark.parametrize("function", FUNCTIONS)
def test_no_lambda_package_carries_pandas_pyarrow_or_numpy_and_each_stays_under_50_mb_unzipped(
    function: str, lambda_packages
) -> None:
    # Issue #16: the dashboard's data stack made the update manager 216 MB unzipped (slow cold starts).
    package = lambda_packages[function]
    with zipfile.ZipFile(package.path) as archive:
        tops = {name.split("/")[0].split("-")[0] for name in archive.namelist()}
    assert not tops & set(DASHBOARD_ONLY), sorted(tops & set(DASHBOARD_ONLY))
    assert not any(top.startswith(("numpy.libs", "pyarrow.libs", "pandas.libs")) for top in tops)
    assert package.unzipped_bytes < PACKAGE_BUDGET_BYTES, f"{package.unzipped_bytes / 2**20:.1f} MiB unzipped"


@pytest.mark.parametrize("function", FUNCTIONS)
def test_each_lambda_package_is_built_for_python312_on_arm64_with_the_template_handler(
    function: str, lambda_packages
) -> None:
    with zipfile.ZipFile(lambda_packages[function].path) as archive:
        names = archive.namelist()
    assert template_handler(function).rsplit(".", 1)[0] + ".py" in names
    extension_tags = {name.split(".")[-2] for name in names if name.endswith(".so") and "cpython-" in name}
    assert extension_tags <= {"cpython-312-aarch64-linux-gnu"}, extension_tags
    assert not any(name.startswith(("boto3/", "botocore/")) for name in names), "the runtime provides boto3"


@pytest.mark.parametrize("function", FUNCTIONS)
def test_no_lambda_package_carries_tests_bytecode_or_development_files(
    function: str, lambda_packages
) -> None:
    with zipfile.ZipFile(lambda_packages[function].path) as archive:
        names = archive.namelist()
    offending = [
        name
        for name in names
        if {"tests", "test", "__pycache__"} & set(name.split("/")[:-1])
        or name.endswith((".pyc", ".pyi", ".h", ".pyx", ".pxd"))
        or name.split("/")[-1].startswith("test_")
        or name.split("/")[-1] == "conftest.py"
        or name.startswith(("bin/", "tests/", "pages/", "simulator/", "bench/", "infra/", "docs/"))
        or name.startswith(("fleetota_core/local/", "fleetota_core/cli/"))
    ]
    assert offending == []
    other_function = next(f for f in FUNCTIONS if f != function)
    assert not any(name.startswith(f"lambdas/{other_function}/") for name in names)
