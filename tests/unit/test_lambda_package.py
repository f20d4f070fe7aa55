"""Lambda packaging without pip or AWS: import closure, file selection, dependency cache, size limits."""

from __future__ import annotations

import subprocess
import threading
import zipfile
from pathlib import Path

import pytest

from fleetota_core.errors import DeployError
from fleetota_core.services.deploy.lambda_dependencies import PackageTarget, install_dependencies, pip_command
from fleetota_core.services.deploy.lambda_imports import import_closure, requirement_pins
from fleetota_core.services.deploy.lambda_package import (
    LambdaPackage,
    build_package,
    check_size,
    is_shipped,
    write_zip,
)


def _write(path: Path, text: str = "") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A miniature checkout: one handler reaching part of fleetota_core."""
    _write(tmp_path / "fleetota_core/__init__.py")
    _write(tmp_path / "fleetota_core/domain/__init__.py")
    _write(tmp_path / "fleetota_core/domain/vin.py", "import re\nimport pydantic\n")
    _write(
        tmp_path / "fleetota_core/services/ingest/telemetry_object.py",
        "from __future__ import annotations\n"
        "from typing import TYPE_CHECKING\n"
        "from ...domain import vin\n"
        "if TYPE_CHECKING:\n    import pandas\n    from fleetota_core.local import server\n"
        "def later():\n    import yaml\n",
    )
    _write(tmp_path / "fleetota_core/local/server.py", "import moto\n")
    _write(tmp_path / "fleetota_core/cli/__init__.py", "import argparse\n")
    _write(
        tmp_path / "lambdas/telemetry_processor/handler.py",
        "from fleetota_core.services.ingest.telemetry_object import later\nimport boto3\n\n"
        "def handler(event, context):\n    return 1\n",
    )
    _write(tmp_path / "lambdas/telemetry_processor/tests/test_handler.py", "def test(): pass\n")
    return tmp_path


def test_the_closure_follows_relative_and_lazy_imports_but_not_type_checking_only_ones(repo: Path) -> None:
    closure = import_closure([repo / "lambdas/telemetry_processor/handler.py"], repo)
    shipped = {p.relative_to(repo).as_posix() for p in closure.core_files}
    assert shipped == {
        "fleetota_core/__init__.py",
        "fleetota_core/services/ingest/telemetry_object.py",
        "fleetota_core/domain/__init__.py",
        "fleetota_core/domain/vin.py",
    }
    assert closure.third_party == {"pydantic", "yaml", "boto3"}


def test_pins_use_the_installed_versions_and_leave_out_what_the_lambda_runtime_provides() -> None:
    pins = requirement_pins({"pydantic", "boto3", "botocore"})
    assert len(pins) == 1 and pins[0].startswith("pydantic==")


def test_an_import_no_installed_distribution_provides_is_a_clear_error() -> None:
    with pytest.raises(DeployError, match=r"'no_such_module_xyz'.*requirements\.txt"):
        requirement_pins({"no_such_module_xyz"})


@pytest.mark.parametrize(
    ("path", "shipped"),
    [
        ("pydantic/main.py", True),
        ("pydantic-2.9.dist-info/METADATA", True),
        ("cryptography/hazmat/bindings/_rust.abi3.so", True),
        ("pydantic/tests/test_main.py", False),
        ("msgspec/tests/data/x.json", False),
        ("pkg/__pycache__/mod.cpython-312.pyc", False),
        ("pkg/mod.pyi", False),
        ("pkg/include/header.h", False),
        ("msgspec/_core.pyx", False),
        ("bin/dotenv", False),
        ("annotated_types/test_cases.py", False),
        ("pkg/conftest.py", False),
    ],
)
def test_only_runtime_files_are_shipped(path: str, shipped: bool) -> None:
    assert is_shipped(Path(path)) is shipped


def test_pip_fetches_binary_wheels_for_lambdas_python_and_architecture(tmp_path: Path) -> None:
    command = pip_command(["pydantic==2.9.0"], PackageTarget.lambda_runtime("arm64"), tmp_path)
    assert command[-1] == "pydantic==2.9.0"
    assert "--only-binary=:all:" in command
    assert command[command.index("--python-version") + 1] == "3.12"
    assert command[command.index("--target") + 1] == str(tmp_path)
    platforms = [command[i + 1] for i, arg in enumerate(command) if arg == "--platform"]
    assert "manylinux2014_aarch64" in platforms and all(p.endswith("_aarch64") for p in platforms)


def test_an_unknown_architecture_is_refused() -> None:
    with pytest.raises(DeployError, match="unknown Lambda architecture 'sparc'"):
        PackageTarget(architecture="sparc")


class FakePip:
    def __init__(self, returncode: int = 0) -> None:
        self.calls: list[list[str]] = []
        self.returncode = returncode

    def __call__(self, command: list[str]) -> subprocess.CompletedProcess[str]:
        self.calls.append(list(command))
        target = Path(command[command.index("--target") + 1])
        _write(target / "pydantic/__init__.py", "VERSION = 'fake'\n")
        return subprocess.CompletedProcess(command, self.returncode, "", "ERROR: No matching distribution")


def test_dependencies_are_installed_once_per_pin_set_and_then_come_from_the_cache(tmp_path: Path) -> None:
    pip = FakePip()
    target = PackageTarget.lambda_runtime("x86_64")
    first = install_dependencies(["pydantic==2.9.0"], target, tmp_path, run=pip)
    again = install_dependencies(["pydantic==2.9.0"], target, tmp_path, run=pip)
    other = install_dependencies(["pydantic==2.9.1"], target, tmp_path, run=pip)
    assert first == again != other
    assert len(pip.calls) == 2
    assert (first / "pydantic/__init__.py").is_file()


def test_a_failed_pip_install_is_a_clear_error_and_leaves_no_cache_entry(tmp_path: Path) -> None:
    with pytest.raises(DeployError, match=r"pip could not install.*No matching distribution"):
        install_dependencies(["nope==1"], PackageTarget(), tmp_path, run=FakePip(returncode=1))
    assert list(tmp_path.iterdir()) == []


def test_a_package_holds_the_handler_its_closure_and_dependencies_but_no_tests(
    repo: Path, tmp_path: Path
) -> None:
    package = build_package(
        "telemetry_processor", PackageTarget(), root=repo, build_dir=tmp_path / "b", run=FakePip()
    )
    with zipfile.ZipFile(package.path) as archive:
        names = set(archive.namelist())
    assert names == {
        "lambdas/telemetry_processor/handler.py",
        "fleetota_core/__init__.py",
        "fleetota_core/services/ingest/telemetry_object.py",
        "fleetota_core/domain/__init__.py",
        "fleetota_core/domain/vin.py",
        "pydantic/__init__.py",
    }
    assert package.s3_key == f"lambda/telemetry_processor/arm64-py3.12-{package.sha256[:16]}.zip"


@pytest.mark.parametrize("library", ["pandas", "pyarrow", "numpy"])
def test_a_handler_reaching_the_dashboards_data_libraries_is_refused_naming_the_importing_file(
    repo: Path, tmp_path: Path, library: str
) -> None:
    # Given a core module the handler imports that pulls in pandas, pyarrow or numpy (even lazily)
    _write(
        repo / "fleetota_core/domain/vin.py",
        f"import re\nimport pydantic\n\ndef frame():\n    import {library}\n",
    )
    pip = FakePip()
    # When the package is built, Then it is refused before pip runs, naming the file
    with pytest.raises(DeployError, match=rf"must not import.*{library} by fleetota_core/domain/vin\.py"):
        build_package("telemetry_processor", PackageTarget(), root=repo, build_dir=tmp_path / "b", run=pip)
    assert pip.calls == []


def test_zips_are_reproducible_so_an_unchanged_checkout_keeps_its_s3_key(tmp_path: Path) -> None:
    source = _write(tmp_path / "a.py", "x = 1\n")
    write_zip({"a.py": source}, tmp_path / "one.zip")
    source.touch()
    write_zip({"a.py": source}, tmp_path / "two.zip")
    assert (tmp_path / "one.zip").read_bytes() == (tmp_path / "two.zip").read_bytes()


def test_a_package_over_lambdas_unzipped_limit_is_refused_with_its_largest_parts(tmp_path: Path) -> None:
    source = _write(tmp_path / "big.py", "x" * 5000)
    write_zip({"pyarrow/big.py": source}, tmp_path / "p.zip")
    package = LambdaPackage("update_manager", tmp_path / "p.zip", "0" * 64, 100, 5000, PackageTarget())
    with pytest.raises(
        DeployError, match=r"update_manager package is too large.*unzipped.*largest parts: pyarrow"
    ):
        check_size(package, max_unzipped=4000)
    check_size(package, max_unzipped=5000)
    with pytest.raises(DeployError, match="zipped exceeds"):
        check_size(package, max_unzipped=5000, max_zipped=99)


def test_a_concurrent_build_that_finished_first_keeps_its_dependencies_in_place(tmp_path: Path) -> None:
    # Two builds of the same pins (two deploys, two test workers): the second one's pip finishes after
    # the first build has published the cache entry and may be zipping from it.
    target = PackageTarget.lambda_runtime("x86_64")
    first = install_dependencies(["pydantic==2.9.0"], target, tmp_path / "a", run=FakePip())
    marker = next(p for p in first.iterdir() if p.is_file() and p.name != "pydantic")

    class LateFinisher(FakePip):
        def __call__(self, command: list[str]) -> subprocess.CompletedProcess[str]:
            done = super().__call__(command)
            _write(published / "pydantic/__init__.py", "VERSION = 'first'\n")  # the winner, meanwhile
            (published / marker.name).write_text(marker.read_text())
            return done

    published = tmp_path / "b" / first.name
    entry = install_dependencies(["pydantic==2.9.0"], target, tmp_path / "b", run=LateFinisher())

    assert entry == published
    assert (entry / "pydantic/__init__.py").read_text() == "VERSION = 'first'\n"  # not removed and replaced
    assert [p.name for p in (tmp_path / "b").iterdir()] == [first.name]  # no staging left behind


def test_two_builds_writing_the_same_zip_at_once_both_leave_a_complete_zip(tmp_path: Path) -> None:
    source = _write(tmp_path / "src/handler.py", "def handler(event, context):\n    return 1\n" * 2000)
    destination = tmp_path / "out/handler.zip"
    errors: list[BaseException] = []

    def build() -> None:
        try:
            for _ in range(20):
                write_zip({f"handler{i}.py": source for i in range(20)}, destination)
        except BaseException as exc:  # collected for the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=build) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    with zipfile.ZipFile(destination) as archive:
        assert archive.testzip() is None and len(archive.namelist()) == 20
    assert [p.name for p in destination.parent.iterdir()] == ["handler.zip"]
