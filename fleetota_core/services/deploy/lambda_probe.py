"""Import a built Lambda package as Lambda loads it, in a clean interpreter, and time the handler import.

Used by the deploy-package test (it must import, from nothing but the package, the runtime's boto3
and the standard library) and by ``bench/lambda_packages.py`` (cold-start import time).
"""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from typing import TYPE_CHECKING, Any

from fleetota_core.errors import DeployError
from fleetota_core.infra_template import load_template

if TYPE_CHECKING:
    from collections.abc import Sequence
    from pathlib import Path

LOGICAL_IDS = {"telemetry_processor": "TelemetryProcessorFunction", "update_manager": "UpdateManagerFunction"}

# What Lambda's bootstrap does with the Handler setting, timed, then a check that nothing leaked in
# from outside the package, the runtime directory and the standard library.
_IMPORT_LIKE_LAMBDA = r"""
import importlib, json, sys, sysconfig, time
task, runtime, handler, extra = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4])
sys.path[:0] = [task, runtime]
module_path, attribute = handler.rsplit(".", 1)
started = time.perf_counter()
module = importlib.import_module(module_path.replace("/", "."))
seconds = time.perf_counter() - started
assert callable(getattr(module, attribute)), f"{handler} is not callable"
for name in extra:
    importlib.import_module(name)
stdlib = sysconfig.get_paths()["stdlib"]
outside = sorted(
    {name for name, m in list(sys.modules.items())
     if getattr(m, "__file__", None) and not m.__file__.startswith((task, runtime, stdlib))}
)
loaded = sorted({name.split(".")[0] for name in sys.modules})
print(json.dumps({"outside": outside, "handler_file": module.__file__, "seconds": seconds, "loaded": loaded}))
"""


def template_handler(function: str) -> str:
    """The template's ``Handler`` setting for a function, e.g. ``lambdas/update_manager/handler.handler``."""
    return str(load_template()["Resources"][LOGICAL_IDS[function]]["Properties"]["Handler"])


def lambda_environment(function: str) -> dict[str, str]:
    """The function's environment from the template, with placeholders where CloudFormation resolves it."""
    variables = load_template()["Resources"][LOGICAL_IDS[function]]["Properties"]["Environment"]["Variables"]
    return {
        key: value if isinstance(value, str) else f"placeholder-{key.lower()}"
        for key, value in variables.items()
    }


def extract(zip_path: Path, task: Path) -> Path:
    """Unzip a package where Lambda would (``/var/task``); returns ``task``."""
    with zipfile.ZipFile(zip_path) as archive:
        archive.extractall(task)
    return task


def import_like_lambda(
    function: str,
    python: Path,
    task: Path,
    runtime: Path,
    extra: Sequence[str] = (),
    path_env: str = "",
) -> dict[str, Any]:
    """Import ``function``'s handler from ``task`` in a fresh isolated ``python``.

    Returns ``outside`` (modules loaded from anywhere else), ``handler_file``, ``seconds`` (the
    handler module's import, what a cold start pays before the first event) and ``loaded`` (every
    top-level module name in ``sys.modules`` afterwards).
    """
    environment = {
        "PATH": path_env,
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_LAMBDA_FUNCTION_NAME": function,
        **lambda_environment(function),
    }
    command = [str(python), "-I", "-c", _IMPORT_LIKE_LAMBDA, str(task), str(runtime)]
    command += [template_handler(function), json.dumps(list(extra))]
    result = subprocess.run(
        command, capture_output=True, text=True, env=environment, timeout=120, check=False
    )
    if result.returncode != 0:
        raise DeployError(f"the {function} package does not import: {result.stderr[-3000:]}")
    report: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return report


def clean_python(venv: Path) -> Path:
    """A fresh ``venv --without-pip`` at ``venv`` (nothing installed); returns its interpreter."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    return venv / "bin" / "python"
