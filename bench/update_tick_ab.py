"""The update-manager tick bench of a baseline git ref and of the current working tree, side by side.

    .venv/bin/python bench/update_tick_ab.py [--baseline 2bf7805] [--deployments 100000] [--rounds 3]
        [--ticks 5]

Checks the baseline out into a temporary ``git worktree add --detach`` (removed at the end, also on
an error or Ctrl-C) and runs each version's OWN ``bench/update_tick.py --deployments N [--ticks K]``
as a subprocess, cwd and PYTHONPATH set to that version's tree, alternating baseline, current,
baseline, current, ... so that both see the same machine load. One run at a time: each bench starts
its own moto server, and the harness makes sure a run's whole process group (bench and server) is
gone before the next one starts. A bench that accepts ``--json`` is asked for its JSON line; an older
one's human output (per-tick lines on stderr, the summary line on stdout) is parsed instead.

Prints, per version, the median tick of each round, the median of those medians, the median CPU
seconds per tick (moto server, tick process), the ratio current / baseline, and the load average
before and after. Exits 0 when every run succeeded.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BENCH = Path("bench/update_tick.py")
DEFAULT_BASELINE = "2bf7805"  # the last commit before the campaign-slice refactor
LOCK = Path(tempfile.gettempdir()) / "fleetota-update_tick_ab.lock"

# The human output of bench/update_tick.py (as of 2bf7805):
#   stderr: "tick 3: 2.975 s  notified 50 ...; CPU: server 2.45 s, tick 1.04 s"
#   stdout: "update tick, 5,000 deployments, steady state: median 3.276 s over 3 ticks (min ..."
TICK_LINE = re.compile(r"^tick\s+(\d+):\s+([0-9.]+)\s*s\b(.*)$", re.MULTILINE)
CPU_PART = re.compile(r"CPU:\s*server\s+([0-9.]+)\s*s,\s*tick\s+([0-9.]+)\s*s")
SUMMARY = re.compile(r"median\s+([0-9.]+)\s*s\s+over\s+(\d+)\s+ticks")


@dataclass
class Run:
    """One bench run's figures."""

    median_tick_s: float
    tick_s: list[float]
    server_cpu_s: list[float] = field(default_factory=list)
    tick_cpu_s: list[float] = field(default_factory=list)
    wall_s: float = 0.0
    source: str = "text"


@dataclass
class Version:
    label: str
    tree: Path
    describe: str
    json: bool = False
    runs: list[Run] = field(default_factory=list)


def git(*args: str, cwd: Path = ROOT) -> str:
    return subprocess.run(
        ["git", "-C", str(cwd), *args], check=True, capture_output=True, text=True
    ).stdout.strip()


def parse_output(stdout: str, stderr: str) -> Run:
    """The figures of one run: its ``--json`` line if it printed one, else its human text."""
    for line in reversed(stdout.splitlines()):
        line = line.strip()
        if line.startswith("{"):
            with contextlib.suppress(ValueError):
                data = json.loads(line)
                if isinstance(data, dict) and "median_tick_s" in data:
                    return Run(
                        median_tick_s=float(data["median_tick_s"]),
                        tick_s=[float(t) for t in data.get("tick_s", [])],
                        server_cpu_s=[float(t) for t in data.get("server_cpu_s", [])],
                        tick_cpu_s=[float(t) for t in data.get("tick_cpu_s", [])],
                        source="json",
                    )
    text = stderr + "\n" + stdout
    ticks: dict[int, float] = {}
    server_cpu: list[float] = []
    tick_cpu: list[float] = []
    for match in TICK_LINE.finditer(text):
        ticks[int(match[1])] = float(match[2])
        if cpu := CPU_PART.search(match[3]):
            server_cpu.append(float(cpu[1]))
            tick_cpu.append(float(cpu[2]))
    summary = SUMMARY.search(stdout) or SUMMARY.search(text)
    tick_s = [ticks[n] for n in sorted(ticks)]
    if summary:
        median = float(summary[1])
        if tick_s and len(tick_s) != int(summary[2]):
            print(
                f"  warning: {len(tick_s)} tick lines but the summary says {summary[2]} ticks",
                file=sys.stderr,
            )
    elif tick_s:
        median = statistics.median(tick_s)
    else:
        raise ValueError(
            "found neither a JSON line, a 'median ... s over N ticks' summary nor 'tick N:' lines"
        )
    return Run(median_tick_s=median, tick_s=tick_s, server_cpu_s=server_cpu, tick_cpu_s=tick_cpu)


def stop_group(process: subprocess.Popen[str]) -> None:
    """Ends the run's process group (the bench and the moto server it started) and waits until it is gone."""
    for sig, grace in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 10.0)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            break
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=0.1)
            try:
                os.killpg(process.pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.1)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=5)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, 0)
        raise SystemExit(f"process group {process.pid} did not end; not starting another moto server")


def bench_env(tree: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(tree)
    env.pop("PYTHONHOME", None)
    return env


def accepts_json(python: str, tree: Path) -> bool:
    helped = subprocess.run(
        [python, str(BENCH), "--help"], cwd=tree, env=bench_env(tree), capture_output=True, text=True,
        timeout=120,
    )  # fmt: skip
    if helped.returncode != 0:
        raise SystemExit(f"{tree / BENCH} --help failed:\n{helped.stderr[-2000:]}")
    return "--json" in helped.stdout


def run_bench(python: str, version: Version, bench_args: list[str]) -> Run:
    command = [python, str(BENCH), *bench_args, *(["--json"] if version.json else [])]
    started = time.perf_counter()
    # Its own session: Ctrl-C reaches the harness only, which then ends the whole group itself.
    process = subprocess.Popen(
        command, cwd=version.tree, env=bench_env(version.tree), stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True, start_new_session=True,
    )  # fmt: skip
    try:
        stdout, stderr = process.communicate()
    finally:
        stop_group(process)
    wall = time.perf_counter() - started
    if process.returncode != 0:
        raise SystemExit(
            f"{version.label}: {' '.join(command)} (cwd {version.tree}) exited {process.returncode}:\n"
            f"{stderr[-3000:]}{stdout[-1000:]}"
        )
    try:
        run = parse_output(stdout, stderr)
    except ValueError as error:
        raise SystemExit(
            f"{version.label}: {error}\nstdout:\n{stdout[-2000:]}\nstderr:\n{stderr[-2000:]}"
        ) from None
    run.wall_s = wall
    return run


def load() -> str:
    return " ".join(f"{n:.2f}" for n in os.getloadavg())


def median_of(values: list[float]) -> str:
    return f"{statistics.median(values):.2f} s" if values else "n/a"


def report(versions: list[Version], deployments: int, load_before: str, load_after: str) -> None:
    print()
    print(f"update tick A/B, {deployments:,} deployments, {len(versions[0].runs)} rounds")
    print(f"load average (1/5/15 min): before {load_before}; after {load_after}")
    for version in versions:
        runs = version.runs
        medians = [run.median_tick_s for run in runs]
        print(f"{version.label:8s} {version.describe}")
        print(f"  tick medians per round: {', '.join(f'{m:.3f} s' for m in medians)}")
        print(f"  median of tick medians: {statistics.median(medians):.3f} s")
        ticks = [t for run in runs for t in run.tick_s]
        if ticks:
            print(f"  all ticks: min {min(ticks):.3f} s, max {max(ticks):.3f} s ({len(ticks)} ticks)")
        server = [c for run in runs for c in run.server_cpu_s]
        tick = [c for run in runs for c in run.tick_cpu_s]
        print(f"  median CPU per tick: moto server {median_of(server)}, tick process {median_of(tick)}")
        wall = ", ".join(f"{run.wall_s:.0f}" for run in runs)
        print(f"  output parsed from: {runs[0].source}; wall seconds per run: {wall}")
    baseline, current = (statistics.median(run.median_tick_s for run in v.runs) for v in versions)
    print(f"ratio current / baseline (median of tick medians): {current / baseline:.3f}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", default=DEFAULT_BASELINE, help="git ref to compare against")
    parser.add_argument("--deployments", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3, help="A/B pairs")
    parser.add_argument("--ticks", type=int, help="passed through to bench/update_tick.py")
    parser.add_argument("--python", default=sys.executable, help="interpreter for both versions' benches")
    args = parser.parse_args()
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    bench_args = ["--deployments", str(args.deployments)]
    if args.ticks is not None:
        bench_args += ["--ticks", str(args.ticks)]

    try:
        sha = git("rev-parse", "--verify", f"{args.baseline}^{{commit}}")
    except subprocess.CalledProcessError as error:
        raise SystemExit(f"--baseline {args.baseline!r} is not a commit: {error.stderr.strip()}") from None
    head = git("rev-parse", "--short", "HEAD")
    dirty = " + uncommitted changes" if git("status", "--porcelain", "--untracked-files=no") else ""

    def interrupted(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    # Explicitly, also for SIGINT: a shell starts background jobs with SIGINT ignored.
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, interrupted)

    with LOCK.open("w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise SystemExit(f"another update_tick_ab run holds {LOCK}; one tick bench at a time") from None
        scratch = Path(tempfile.mkdtemp(prefix="update_tick_ab-"))
        tree = scratch / "baseline"
        try:
            git("worktree", "add", "--detach", str(tree), sha)
            versions = [
                Version("baseline", tree, f"{args.baseline} = {sha[:10]} (temporary worktree {tree})"),
                Version("current", ROOT, f"working tree {ROOT} (HEAD {head}{dirty})"),
            ]
            for version in versions:
                if not (version.tree / BENCH).is_file():
                    raise SystemExit(f"{version.label}: no {BENCH} in {version.tree}")
                version.json = accepts_json(args.python, version.tree)
            load_before = load()
            print(f"load average before: {load_before}", flush=True)
            for n in range(args.rounds):
                for version in versions:
                    step = f"round {n + 1}/{args.rounds} {version.label}"
                    print(f"{step}: bench/update_tick.py {' '.join(bench_args)} ...", end=" ", flush=True)
                    run = run_bench(args.python, version, bench_args)
                    version.runs.append(run)
                    print(f"median tick {run.median_tick_s:.3f} s "
                          f"(ticks {', '.join(f'{t:.2f}' for t in run.tick_s)}; {run.wall_s:.0f} s)",
                          flush=True)  # fmt: skip
            report(versions, args.deployments, load_before, load())
        except KeyboardInterrupt:
            print("\ninterrupted; removing the baseline worktree", file=sys.stderr)
            return 130
        finally:
            for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
                signal.signal(sig, signal.SIG_IGN)
            with contextlib.suppress(subprocess.CalledProcessError):
                git("worktree", "remove", "--force", str(tree))
            shutil.rmtree(scratch, ignore_errors=True)
            if str(tree) in git("worktree", "list", "--porcelain"):
                git("worktree", "prune")
            for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
                signal.signal(sig, signal.SIG_DFL)
    return 0


if __name__ == "__main__":
    sys.exit(main())
