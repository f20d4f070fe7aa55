"""Size and cold-start import time of each Lambda package, optionally beside an earlier revision's.

    .venv/bin/python bench/lambda_packages.py [--baseline REV] [--architectures arm64 x86_64] [--runs 5]

Builds every function's zip the way ``deploy`` does (``build_packages``) for Lambda's python3.12 on
each architecture and prints the zipped and unzipped sizes. Then it builds the same packages for this
interpreter (``PackageTarget.host()``), unzips each into a directory, and imports the handler in a
fresh ``venv --without-pip`` laid out like Lambda (the package, then the runtime's boto3, then the
standard library), ``--runs`` times, each in a new process, the builds taking turns so that a change
in the machine's load hits them alike: the median is the import a cold start pays before the first
event. With ``--baseline REV`` it does all of this for ``git archive REV`` too,
built by that revision's own packaging code (dependency cache shared), in the same run.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from importlib import metadata
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fleetota_core.services.deploy.lambda_dependencies import PackageTarget, install_dependencies
from fleetota_core.services.deploy.lambda_package import BUILD_DIR, FUNCTIONS, REPO_ROOT, build_packages
from fleetota_core.services.deploy.lambda_probe import clean_python, extract, import_like_lambda

# Run inside an earlier revision's tree, with its own fleetota_core: its build, its sizes.
_BUILD_AT_REVISION = r"""
import json, sys
from pathlib import Path
from fleetota_core.services.deploy.lambda_dependencies import PackageTarget
from fleetota_core.services.deploy.lambda_package import build_packages
root, build_dir, architectures = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3:]
targets = [PackageTarget.lambda_runtime(a) for a in architectures] + [PackageTarget.host()]
out = {}
for target in targets:
    for p in build_packages(target, root, build_dir):
        out.setdefault(target.label, {})[p.function] = [str(p.path), p.zipped_bytes, p.unzipped_bytes]
print(json.dumps(out))
"""


def _sizes(architectures: list[str]) -> dict[str, dict[str, list]]:
    out: dict[str, dict[str, list]] = {}
    for target in [*(PackageTarget.lambda_runtime(a) for a in architectures), PackageTarget.host()]:
        for p in build_packages(target):
            out.setdefault(target.label, {})[p.function] = [str(p.path), p.zipped_bytes, p.unzipped_bytes]
    return out


def _baseline_sizes(revision: str, architectures: list[str], work: Path) -> dict[str, dict[str, list]]:
    source, build = work / "src", work / "build"
    source.mkdir()
    build.mkdir()
    (build / "deps").symlink_to(BUILD_DIR / "deps")  # the same pip cache: only the code differs
    archive = subprocess.run(
        ["git", "-C", str(REPO_ROOT), "archive", revision], capture_output=True, check=True
    )
    subprocess.run(["tar", "-x", "-C", str(source)], input=archive.stdout, check=True)
    result = subprocess.run(
        [sys.executable, "-c", _BUILD_AT_REVISION, str(source), str(build), *architectures],
        capture_output=True,
        text=True,
        cwd=source,
        env={**os.environ, "PYTHONPATH": str(source)},
        check=False,
    )
    if result.returncode != 0:
        raise SystemExit(f"building {revision} failed: {result.stderr[-2000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def _import_medians(
    builds: dict[str, dict[str, dict[str, list]]],
    host: str,
    python: Path,
    runtime: Path,
    runs: int,
    work: Path,
) -> dict[tuple[str, str], float]:
    """Median import seconds per (build, function); the builds take turns, so load drift hits all alike."""
    tasks = {
        (name, function): extract(Path(sizes[host][function][0]), work / f"task-{index}-{function}")
        for index, (name, sizes) in enumerate(builds.items())
        for function in FUNCTIONS
    }
    times: dict[tuple[str, str], list[float]] = {key: [] for key in tasks}
    path_env = os.environ.get("PATH", "")
    for _ in range(runs):
        for (name, function), task in tasks.items():
            report = import_like_lambda(function, python, task, runtime, path_env=path_env)
            times[name, function].append(report["seconds"])
    return {key: statistics.median(values) for key, values in times.items()}


def _mb(size: int) -> str:
    return f"{size / 1e6:.1f} MB"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", help="a git revision to build and measure beside this checkout")
    parser.add_argument("--architectures", nargs="+", default=["arm64", "x86_64"])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()

    runtime_pins = [f"{name}=={metadata.version(name)}" for name in ("boto3", "botocore")]
    runtime = install_dependencies(runtime_pins, PackageTarget.host(), BUILD_DIR / "deps")
    host = PackageTarget.host().label
    with tempfile.TemporaryDirectory(prefix="fleetota-bench-") as tmp:
        work = Path(tmp)
        python = clean_python(work / "venv")
        builds = {"this checkout": _sizes(args.architectures)}
        if args.baseline:
            base = work / "baseline"
            base.mkdir()
            builds[args.baseline] = _baseline_sizes(args.baseline, args.architectures, base)
        imports = _import_medians(builds, host, python, runtime, args.runs, work)
        print(
            f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores; import: median of {args.runs}"
        )
        header = "| build | function |"
        header += "".join(f" {a} zipped | {a} unzipped |" for a in args.architectures)
        print(f"{header} import (py{host.split('-py')[1]}) |")
        print("|---|---|" + "---:|" * (2 * len(args.architectures) + 1))
        for name, sizes in builds.items():
            for function in FUNCTIONS:
                cells = "".join(
                    f" {_mb(sizes[f'{a}-py3.12'][function][1])} | {_mb(sizes[f'{a}-py3.12'][function][2])} |"
                    for a in args.architectures
                )
                print(f"| {name} | {function} |{cells} {imports[name, function] * 1000:.0f} ms |")


if __name__ == "__main__":
    main()
