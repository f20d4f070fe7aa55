"""Firmware deltas: size against the full image, time to make and to apply, on 64 MiB images.

    .venv/bin/python bench/firmware_delta.py [--mib 64] [--changed 0.05] [--runs 3] [--steps 1 3] [--json]

Makes a ``--mib`` image (``simulator.firmware_images.base_image``, incompressible like compiled code
plus compressed assets), then each later build with ``evolve``: ``--changed`` of its 4 KiB blocks
rewritten or patched, one section of 1 % of the blocks moved, 0.5 % new blocks inserted. For each
``--steps`` (a delta over 1 build, over 3 builds, ...), it makes the patch with
``fleetota_core.services.delta.patch.make_patch`` (what ``firmware publish --deltas-from`` runs) and
applies it with ``apply_patch`` (what the vehicle runs), ``--runs`` times each, and prints the
median times, the delta's size, how many times smaller than the full image it is (goal: at least 5x),
and, for comparison, the full image compressed with zstd alone. Peak memory is the process's.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import sys
import time
from pathlib import Path

import zstandard

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fleetota_core.services.delta.patch import apply_patch, make_patch
from simulator.firmware_images import base_image, evolve

GOAL = 5.0


def _median_s(fn, runs: int) -> tuple[float, object]:
    times, result = [], None
    for _ in range(runs):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mib", type=int, default=64)
    parser.add_argument("--changed", type=float, default=0.05, help="share of blocks changed per build")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "--steps", type=int, nargs="+", default=[1, 3], help="builds between source and target"
    )
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    builds = [base_image(args.mib * 2**20, "bench")]
    for n in range(max(args.steps)):
        builds.append(evolve(builds[-1], f"bench:{n + 1}", args.changed))
    rows = []
    for steps in args.steps:
        source, target = builds[-1 - steps], builds[-1]
        make_s, made = _median_s(lambda s=source, t=target: make_patch(s, t), args.runs)
        patch, window_log = made  # type: ignore[misc]
        apply_s, rebuilt = _median_s(
            lambda s=source, p=patch, w=window_log, t=target: apply_patch(s, p, w, len(t)), args.runs
        )
        if rebuilt != target:
            raise SystemExit("the applied patch did not rebuild the target image")
        rows.append(
            {
                "builds_apart": steps,
                "full_bytes": len(target),
                "delta_bytes": len(patch),
                "smaller_x": round(len(target) / len(patch), 1),
                "make_s": round(make_s, 2),
                "apply_s": round(apply_s, 3),
            }
        )
    compressed = len(zstandard.ZstdCompressor(level=3).compress(builds[-1]))
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
    print(
        f"{args.mib} MiB images, {args.changed:.0%} of 4 KiB blocks changed per build, median of {args.runs}"
    )
    print(f"{'APART':>5} {'FULL':>12} {'DELTA':>11} {'SMALLER':>8} {'MAKE':>7} {'APPLY':>7}")
    for r in rows:
        print(
            f"{r['builds_apart']:>5} {r['full_bytes']:>12,} {r['delta_bytes']:>11,} {r['smaller_x']:>7.1f}x "
            f"{r['make_s']:>6.2f}s {r['apply_s']:>6.3f}s"
        )
    print(f"the full image zstd-compressed alone: {compressed:,} bytes ({len(builds[-1]) / compressed:.2f}x)")
    print(f"peak memory: {peak_mb} MB")
    ok = all(r["smaller_x"] >= GOAL for r in rows if r["builds_apart"] == 1)
    print(f"goal (one build apart, at least {GOAL:g}x smaller): {'met' if ok else 'MISSED'}")
    if args.json:
        print(json.dumps({"rows": rows, "compressed_full_bytes": compressed, "peak_mb": peak_mb}))
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
