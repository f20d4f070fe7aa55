"""``deploy`` / ``destroy`` from a shell: one clear line and a non-zero exit for what operators get wrong.

Each test runs the real CLI in a subprocess with an environment that has no AWS configuration at
all (empty config and credential files, no instance metadata), as on a fresh laptop.
"""

from __future__ import annotations

import os
import subprocess
import sys
from typing import TYPE_CHECKING

import pytest

from fleetota_core.cli import build_parser
from fleetota_core.services.deploy.lambda_package import REPO_ROOT

if TYPE_CHECKING:
    from pathlib import Path


def _bare_environment(home: Path, **extra: str) -> dict[str, str]:
    (home / "config").write_text("")
    (home / "credentials").write_text("")
    return {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(home),
        "AWS_CONFIG_FILE": str(home / "config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(home / "credentials"),
        # Off EC2 the metadata lookup only adds a timeout before the same error.
        "AWS_EC2_METADATA_DISABLED": "true",
        "FLEETOTA_MODE": "aws",
        **extra,
    }


def _run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "fleetota_core", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO_ROOT,
        timeout=60,
        check=False,
    )


def _assert_one_error_line(result: subprocess.CompletedProcess[str], expected: str) -> None:
    assert result.returncode != 0
    assert "Traceback" not in result.stderr + result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    assert expected in lines[0]


def test_deploy_without_credentials_says_so_in_one_line_and_fails(tmp_path: Path) -> None:
    result = _run(
        ["deploy", "--stack-name", "fleetota", "--region", "eu-west-1", "--yes"], _bare_environment(tmp_path)
    )
    _assert_one_error_line(result, "no AWS credentials found")


def test_deploy_without_a_region_says_so_in_one_line_and_fails(tmp_path: Path) -> None:
    env = _bare_environment(tmp_path, AWS_ACCESS_KEY_ID="AKIAEXAMPLE", AWS_SECRET_ACCESS_KEY="secret")
    result = _run(["deploy", "--stack-name", "fleetota", "--yes"], env)
    _assert_one_error_line(result, "no AWS region: pass --region")


def test_destroy_with_an_unknown_profile_names_the_profile_in_one_line_and_fails(tmp_path: Path) -> None:
    result = _run(
        ["destroy", "--stack-name", "fleetota", "--region", "eu-west-1", "--profile", "nosuch", "--yes"],
        _bare_environment(tmp_path),
    )
    _assert_one_error_line(result, "AWS profile 'nosuch' not found")


def test_deploy_rejects_a_stack_name_that_cannot_prefix_bucket_names(tmp_path: Path) -> None:
    env = _bare_environment(tmp_path, AWS_ACCESS_KEY_ID="AKIAEXAMPLE", AWS_SECRET_ACCESS_KEY="secret")
    result = _run(["deploy", "--stack-name", "FleetOTA_Prod", "--region", "eu-west-1", "--yes"], env)
    _assert_one_error_line(result, "invalid stack name 'FleetOTA_Prod'")


@pytest.mark.parametrize("command", ["deploy", "destroy"])
def test_help_documents_every_option(command: str, tmp_path: Path) -> None:
    subparsers = next(a for a in build_parser()._actions if a.__class__.__name__ == "_SubParsersAction")
    parser = subparsers.choices[command]
    result = _run([command, "--help"], _bare_environment(tmp_path))
    assert result.returncode == 0
    text = " ".join(result.stdout.split())
    for action in parser._actions:
        assert action.help, f"{action.option_strings} has no help text"
        for option in action.option_strings:
            assert option in text, f"{command} --help does not mention {option}"
    for required in (
        "--stack-name",
        "--region",
        "--profile",
        "--yes",
        "--endpoint-url",
        "--artifacts-bucket",
    ):
        assert required in text
