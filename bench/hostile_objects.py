"""Hostile telemetry objects through the real ``ingest_object``: seconds and peak RSS growth, beside
the code before decompression was bounded, in the same run.

    .venv/bin/python bench/hostile_objects.py [--pre-fix REF] [--skip-pre-fix] [--timeout 300]

Each measurement runs in a fresh interpreter (so peak RSS is that object's alone) over the tree's
own ``ingest_object`` and ``S3Quarantine`` on a recording S3 client (the quarantine bytes are
counted, not sent) and minimal in-memory ledger and vehicle ports. The pre-fix tree is exported
with ``git archive`` (default: the last commit before the bounds, found by its message).

Objects:

* ``million_lines``: the security review's 1,975-byte gzip of 1,000,000 lines of ``1``;
* ``bomb``: 1 GiB of zeros gzipped (about 1 MB);
* ``multi_member``: 3 gzip members of 1,000 simulator records each (records received should be 3,000).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
OBJECTS = ("million_lines", "bomb", "multi_member")
PRE_FIX_SUBJECT = "architecture.md: the one error taxonomy"

# Runs inside the measured interpreter, with PYTHONPATH at the tree under test.
_MEASURE = r"""
import dataclasses, gzip, json, resource, sys, time
from collections import Counter
from datetime import UTC, datetime
from fleetota_core.adapters.telemetry_objects import S3Quarantine
from fleetota_core.domain.enrichment import ReleaseCatalog
from fleetota_core.services.ingest.ports import ObjectRef
from fleetota_core.services.ingest.telemetry_object import IngestPorts, ingest_object

kind, repo = sys.argv[1], sys.argv[2]
sys.path.append(repo)  # the simulator, for realistic records (the same in both trees)
now = datetime.now(UTC)
if kind == "million_lines":
    body = gzip.compress(b"1\n" * 1_000_000)
elif kind == "bomb":
    import zlib  # streamed, so building the bomb does not raise the peak RSS measured below
    deflate = zlib.compressobj(9, wbits=31)
    zeros = bytes(1 << 20)
    body = b"".join(deflate.compress(zeros) for _ in range(1024)) + deflate.flush()
else:
    from simulator.fleet import generate_fleet
    from simulator.record import encode
    fleet = generate_fleet(1000, seed=3)
    member = lambda k: gzip.compress(
        ("\n".join(encode(v, now.timestamp() - 60 + k, None) for v in fleet) + "\n").encode()
    )
    body = member(0) + member(1) + member(2)


class RecordingS3:
    def __init__(self):
        self.bytes = 0
    def put_object(self, **kwargs):
        self.bytes += len(kwargs["Body"])


class Objects:
    def get(self, ref):
        return body


class Vehicles:
    def get_many(self, vins):
        return {}
    def put_many(self, states):
        return len(states), 0
    def update_many(self, states):
        return len(states), 0
    def commit_items(self, writes):
        return list(writes)
    def committed(self, written, refused):
        return None


class Ledger:
    counters = Counter()
    def processed_records(self, ref):
        return None
    def commit(self, ref, counters, now):  # the pre-fix tree's commit
        self.counters.update(counters)
        return True
    def commit_carrying(self, commits, items, now):  # this tree's: the markers, writes and counters
        for _, counters in commits:
            self.counters.update(counters)
        return {}, set()
    def count_duplicate(self, ref, records, now):
        pass


class Registry:
    # Trees with the vehicle registry judge records against it: the simulator's fleet is registered.
    def __init__(self, vehicles):
        self.vehicles = {v.vin: v for v in vehicles}
    def get_many(self, vins):
        return {vin: self.vehicles[vin] for vin in vins if vin in self.vehicles}
    def refresh_many(self, vins):
        return self.get_many(vins)


s3 = RecordingS3()
parts = [Objects(), S3Quarantine(s3, "telemetry"), Vehicles(), Ledger(), lambda reports: {}]
if "registry" in {f.name for f in dataclasses.fields(IngestPorts)}:
    from simulator.vehicle_keys import registrations
    parts.append(Registry(registrations(fleet) if kind == "multi_member" else []))
ports = IngestPorts(*parts)
ref = ObjectRef("telemetry", f"raw/{kind}.ndjson.gz", etag="e", size=len(body))
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t0 = time.perf_counter()
outcome = ingest_object(ref, ports, ReleaseCatalog(), now)
seconds = time.perf_counter() - t0
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
c = Ledger.counters
print(json.dumps({
    "object_bytes": len(body), "seconds": round(seconds, 3),
    "rss_growth_mb": round((after - before) / 1024, 1),
    "quarantine_written_mb": round(s3.bytes / 1e6, 3), "object_quarantined": outcome.object_quarantined,
    "received": c["received"], "stored": c["stored"], "quarantined": c["quarantined"],
}))
"""


def measure(tree: Path, kind: str, timeout: float) -> dict[str, object]:
    try:
        done = subprocess.run(
            [sys.executable, "-c", _MEASURE, kind, str(REPO)],
            env={"PYTHONPATH": str(tree), "PATH": "/usr/bin:/bin"},
            cwd=tree,  # `python -c` puts the working directory first on sys.path
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return {"error": f"still running after {timeout:g} s"}
    if done.returncode != 0:
        return {"error": done.stderr.strip().splitlines()[-1] if done.stderr.strip() else "failed"}
    return json.loads(done.stdout.strip().splitlines()[-1])


def pre_fix_commit() -> str:
    """The last commit before the bounds (the bounds commits come after it on this branch)."""
    log = subprocess.run(
        ["git", "-C", str(REPO), "log", "--format=%H %s"], capture_output=True, text=True, check=True
    ).stdout
    for line in log.splitlines():
        sha, subject = line.split(" ", 1)
        if subject.startswith(PRE_FIX_SUBJECT):
            return sha
    raise SystemExit(f"no commit titled {PRE_FIX_SUBJECT!r}; pass --pre-fix REF")


def export(ref: str, into: Path) -> Path:
    archive = into / "tree.tar"
    with archive.open("wb") as out:
        subprocess.run(["git", "-C", str(REPO), "archive", ref, "fleetota_core"], stdout=out, check=True)
    with tarfile.open(archive) as tar:
        tar.extractall(into, filter="data")
    return into


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pre-fix", help="git ref of the code before the bounds (default: found by subject)")
    parser.add_argument("--skip-pre-fix", action="store_true")
    parser.add_argument("--timeout", type=float, default=300.0, help="per measurement, seconds")
    args = parser.parse_args()
    trees = {"bounded (this tree)": REPO}
    with tempfile.TemporaryDirectory() as tmp:
        if not args.skip_pre_fix:
            ref = args.pre_fix or pre_fix_commit()
            trees[f"pre-fix ({ref[:7]})"] = export(ref, Path(tmp))
        for kind in OBJECTS:
            for label, tree in trees.items():
                result = measure(tree, kind, args.timeout)
                print(f"{kind:14} {label:22} {json.dumps(result)}", flush=True)


if __name__ == "__main__":
    main()
