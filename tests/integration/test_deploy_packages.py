"""The Lambda packages ``deploy`` uploads: they import in a clean interpreter, fit Lambda, carry no dev files.

Lambda runs python3.12; this machine has Python 3.11 and no 3.12 (Debian's apt has none either).
So the import test builds the packages for *this* interpreter through the same code path, changing
only the pip target (``PackageTarget.host()``: ``--python-version 3.11 --platform manylinux..._x86_64``),
and imports them in a fresh ``venv --without-pip`` laid out like Lambda: the package directory first,
then the runtime's own boto3/botocore, then the standard library. The packages for Lambda itself
(python3.12, arm64) are checked by content: size, native-extension tags, handler path, no dev files.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from importlib import metadata
from typing import TYPE_CHECKING

import pytest

from fleetota_core.infra_template import load_template
from fleetota_core.services.deploy.lambda_dependencies import PackageTarget, install_dependencies
from fleetota_core.services.deploy.lambda_imports import RUNTIME_PROVIDED, import_closure
from fleetota_core.services.deploy.lambda_package import (
    BUILD_DIR,
    FUNCTIONS,
    MAX_UNZIPPED_BYTES,
    REPO_ROOT,
    LambdaPackage,
    build_packages,
)

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.slow

LOGICAL_IDS = {"telemetry_processor": "TelemetryProcessorFunction", "update_manager": "UpdateManagerFunction"}

# What Lambda's bootstrap does with the Handler setting, then a check that nothing leaked in from
# outside the package, the runtime directory and the standard library.
_IMPORT_LIKE_LAMBDA = r"""
import importlib, json, sys, sysconfig
task, runtime, handler, extra = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4])
sys.path[:0] = [task, runtime]
module_path, attribute = handler.rsplit(".", 1)
module = importlib.import_module(module_path.replace("/", "."))
assert callable(getattr(module, attribute)), f"{handler} is not callable"
for name in extra:
    importlib.import_module(name)
stdlib = sysconfig.get_paths()["stdlib"]
outside = sorted(
    {name for name, m in list(sys.modules.items())
     if getattr(m, "__file__", None) and not m.__file__.startswith((task, runtime, stdlib))}
)
print(json.dumps({"outside": outside, "handler_file": module.__file__}))
"""


def _template_handler(function: str) -> str:
    return load_template()["Resources"][LOGICAL_IDS[function]]["Properties"]["Handler"]


@pytest.fixture(scope="module")
def host_packages() -> dict[str, LambdaPackage]:
    return {p.function: p for p in build_packages(PackageTarget.host())}


@pytest.fixture(scope="module")
def lambda_packages() -> dict[str, LambdaPackage]:
    return {p.function: p for p in build_packages(PackageTarget.lambda_runtime("arm64"))}


@pytest.fixture(scope="module")
def clean_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    venv = tmp_path_factory.mktemp("clean") / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    return venv / "bin" / "python"


@pytest.fixture(scope="module")
def runtime_dir() -> Path:
    """boto3 and botocore at this checkout's versions, standing in for the ones Lambda's runtime ships."""
    pins = [f"{name}=={metadata.version(name)}" for name in ("boto3", "botocore")]
    return install_dependencies(pins, PackageTarget.host(), BUILD_DIR / "deps")


@pytest.mark.parametrize("function", FUNCTIONS)
def test_each_handler_imports_from_its_zip_in_a_clean_interpreter_as_lambda_loads_it(
    function: str, host_packages, clean_python: Path, runtime_dir: Path, tmp_path: Path
) -> None:
    task = tmp_path / "task"
    with zipfile.ZipFile(host_packages[function].path) as archive:
        archive.extractall(task)
    closure = import_closure([REPO_ROOT / "lambdas" / function / "handler.py"], REPO_ROOT)
    # Lazily imported libraries must load too; parquet is what the fleet snapshot writes.
    extra = sorted(closure.third_party - RUNTIME_PROVIDED)
    if "pyarrow" in extra:
        extra.append("pyarrow.parquet")
    environment = {
        "PATH": os.environ.get("PATH", ""),
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_LAMBDA_FUNCTION_NAME": function,
        **_lambda_environment(function),
    }
    result = subprocess.run(
        [
            str(clean_python),
            "-I",
            "-c",
            _IMPORT_LIKE_LAMBDA,
            str(task),
            str(runtime_dir),
            _template_handler(function),
            json.dumps(extra),
        ],
        capture_output=True,
        text=True,
        env=environment,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["outside"] == [], "imported from outside the package, the runtime and the stdlib"
    assert report["handler_file"].startswith(str(task))


def _lambda_environment(function: str) -> dict[str, str]:
    """The function's environment from the template, with placeholders where CloudFormation resolves it."""
    variables = load_template()["Resources"][LOGICAL_IDS[function]]["Properties"]["Environment"]["Variables"]
    return {
        key: value if isinstance(value, str) else f"placeholder-{key.lower()}"
        for key, value in variables.items()
    }


@pytest.mark.parametrize("function", FUNCTIONS)
def test_each_lambda_package_fits_lambdas_unzipped_limit(function: str, lambda_packages) -> None:
    package = lambda_packages[function]
    with zipfile.ZipFile(package.path) as archive:
        unzipped = sum(info.file_size for info in archive.infolist())
    assert unzipped == package.unzipped_bytes
    assert unzipped < MAX_UNZIPPED_BYTES, f"{function}: {unzipped / 1e6:.1f} MB unzipped"


@pytest.mark.parametrize("function", FUNCTIONS)
def test_each_lambda_package_is_built_for_python312_on_arm64_with_the_template_handler(
    function: str, lambda_packages
) -> None:
    with zipfile.ZipFile(lambda_packages[function].path) as archive:
        names = archive.namelist()
    assert _template_handler(function).rsplit(".", 1)[0] + ".py" in names
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
