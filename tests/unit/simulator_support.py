"""Helpers for the simulator tests: run the CLI into a folder and read every record back."""

from __future__ import annotations

import contextlib
import gzip
import io
import json
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from simulator.__main__ import main

if TYPE_CHECKING:
    from pathlib import Path

KEY_PATTERN = re.compile(r"^raw/dt=\d{4}-\d{2}-\d{2}/hour=\d{2}/[0-9TZ]+-[0-9a-f]{8}-\d{6}\.ndjson\.gz$")
SUMMARY = re.compile(r"([\d,]+) readings = ([\d,]+) sent \+ ([\d,]+) held by vehicles \+ ([\d,]+) dropped")


@dataclass
class Run:
    keys: list[str]  # object keys in upload order
    lines: list[tuple[str, str]]  # (object key, NDJSON line) in upload order
    generated: int
    sent: int
    held: int
    dropped: int

    def records(self) -> list[dict]:
        return [json.loads(line) for _, line in self.lines]


def run_cli(out: Path, *args: str) -> Run:
    """Run ``python -m simulator ... --out out --speed 0`` in-process and read its objects back."""
    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        code = main([*args, "--out", str(out), "--speed", "0", "--quiet"])
    assert code == 0, stderr.getvalue()
    summary = SUMMARY.search(stdout.getvalue())
    assert summary is not None, stdout.getvalue()
    generated, sent, held, dropped = (int(g.replace(",", "")) for g in summary.groups())
    files = sorted(p for p in out.rglob("*") if p.is_file())
    # Object names end with the upload counter, so this is upload order.
    files.sort(key=lambda p: p.name.rsplit("-", 1)[1])
    keys = [p.relative_to(out).as_posix() for p in files]
    lines = [
        (key, line)
        for key, path in zip(keys, files, strict=True)
        for line in gzip.decompress(path.read_bytes()).decode().splitlines()
    ]
    return Run(keys, lines, generated, sent, held, dropped)


# Water near each metro, drawn independently of the simulator's land zones as (south, west, north,
# east) boxes that lie entirely in water: sea, bays, large lakes and reservoirs.
WATER_BOXES: dict[str, tuple[float, float, float, float]] = {
    "SF Bay, central": (37.56, -122.32, 37.80, -122.20),
    "SF Bay, south": (37.46, -122.12, 37.52, -122.05),
    "Pacific off San Francisco": (37.20, -123.00, 38.00, -122.53),
    "Pacific off Los Angeles": (33.60, -118.90, 33.98, -118.50),
    "San Pedro Bay": (33.62, -118.25, 33.73, -118.10),
    "Lake Michigan off Chicago": (41.86, -87.58, 42.10, -87.30),
    "Lake Michigan, south side": (41.75, -87.52, 41.86, -87.30),
    "Atlantic south of Long Island": (40.40, -74.00, 40.56, -73.70),
    "Jamaica Bay": (40.59, -73.86, 40.63, -73.79),
    "Upper New York Bay": (40.63, -74.06, 40.68, -74.03),
    "Long Island Sound": (40.83, -73.78, 40.88, -73.70),
    "Cherry Creek Reservoir": (39.635, -104.865, 39.655, -104.840),
    "Standley Lake": (39.860, -105.130, 39.875, -105.105),
    "Mueggelsee": (52.430, 13.625, 52.450, 13.665),
    "Tegeler See": (52.575, 13.245, 52.595, 13.265),
    "Grosser Wannsee": (52.425, 13.160, 52.440, 13.175),
    "King George V Reservoir": (51.635, -0.040, 51.655, -0.025),
    "Queen Mary Reservoir": (51.410, -0.465, 51.425, -0.445),
}


def in_water(lat: float, lon: float) -> str | None:
    """The name of the water body box containing (lat, lon), if any."""
    for name, (south, west, north, east) in WATER_BOXES.items():
        if south <= lat <= north and west <= lon <= east:
            return name
    return None


class MemorySink:
    """Keeps uploaded objects in memory, in upload order."""

    def __init__(self) -> None:
        self.objects: list[tuple[str, bytes]] = []

    def put_batch(self, key: str, body: bytes) -> None:
        self.objects.append((key, body))

    def records(self) -> list[tuple[int, dict]]:
        """(object index, record) for every uploaded record."""
        return [
            (index, json.loads(line))
            for index, (_, body) in enumerate(self.objects)
            for line in gzip.decompress(body).decode().splitlines()
        ]
