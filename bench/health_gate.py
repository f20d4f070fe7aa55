"""The health gate's error rates: A/A campaigns (false pauses) and bad-release campaigns (catches).

    .venv/bin/python bench/health_gate.py [--aa 40] [--bad 20] [--vehicles 600] [--soak-hours 1] [--json]

No stack: each campaign is a fresh simulated fleet (simulator.simulation.FleetSimulation, the same
vehicle, trip, connectivity and health model as ``python -m simulator``) whose first wave (a third of
the fleet, drawn at random) runs the new release. The gate's rule is applied as the update manager
applies it: the control is the rest of the fleet of a model and region the canary has, both groups
sampled to at most MAX_CANARY / MAX_CONTROL vehicles; each vehicle's counters are read when the soak
starts and when it ends, turned into rates (domain/vehicle_health.soak_rates) and judged by
domain/health_gate.judge, the code the tick runs. A campaign "pauses" when the verdict is MARGINAL
or FAIL (INSUFFICIENT is counted apart: the gate would keep waiting).

- A/A: the release changes nothing, so every pause is a false pause (goal: at most 5 %).
- Bad: the release sets DTC P0A80 at 5 % per hour (``dtc=P0A80@5``) in half the campaigns and
  triples parked battery drain (``parked_drain=3``) in the other half (goal: at least 19 of 20 caught).

Each campaign starts at a different hour of a different day, so soaks cover night (parked) and rush
hour (driving) alike.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fleetota_core.domain.enrichment import place_of
from fleetota_core.domain.health_gate import GateVerdict, judge
from fleetota_core.domain.vehicle_health import HealthReading, Signal, soak_rates
from fleetota_core.services.campaigns.health_gate import MAX_CANARY, MAX_CONTROL
from simulator.fleet import generate_fleet
from simulator.health import ReleaseFaults
from simulator.simulation import FleetSimulation
from simulator.uploader import BatchUploader

NEW = "9.9.0"
EPOCH = datetime(2026, 3, 2, tzinfo=UTC).timestamp()  # a Monday
INTERVAL_S = 60.0
WARM_UP_TICKS = 15  # vehicles settle into their day before the wave installs


class _Discard:
    def put_batch(self, key: str, body: bytes) -> None:
        pass


def _reading(v: object) -> HealthReading:
    return HealthReading.of(v.health)  # type: ignore[attr-defined]


def campaign(seed: int, vehicles: int, soak_hours: float, effect: str | None) -> tuple[GateVerdict, dict]:
    """One simulated wave and soak; the verdict and its figures."""
    rng = random.Random(seed)
    faults = ReleaseFaults()
    if effect is not None:
        faults.add(f"{NEW}:{effect}")
    fleet = generate_fleet(vehicles, seed)
    start = EPOCH + rng.randrange(28) * 86_400 + rng.randrange(24) * 3600
    sim = FleetSimulation(
        fleet, BatchUploader(_Discard(), 10_000, "bench"), start=start, interval=INTERVAL_S, seed=seed,
        release_faults=faults,
    )  # fmt: skip
    for _ in range(WARM_UP_TICKS):
        sim.step()
    wave = set(rng.sample([v.vin for v in fleet], vehicles // 3))
    for v in fleet:
        if v.vin in wave:
            v.firmware_version = NEW
    strata = {(v.model, place_of(v.lat, v.lon)[0]) for v in fleet if v.vin in wave}
    canary = [v for v in fleet if v.vin in wave]
    control = [v for v in fleet if v.vin not in wave and (v.model, place_of(v.lat, v.lon)[0]) in strata]
    canary = rng.sample(canary, min(len(canary), MAX_CANARY))
    control = rng.sample(control, min(len(control), MAX_CONTROL))
    before = {v.vin: _reading(v) for v in canary + control}
    for _ in range(round(soak_hours * 3600 / INTERVAL_S)):
        sim.step()

    def rates(group: list) -> dict[Signal, list[float]]:
        out: dict[Signal, list[float]] = {s: [] for s in Signal}
        for v in group:
            for signal, rate in soak_rates(before[v.vin], _reading(v)).items():
                out[signal].append(rate)
        return out

    judgement = judge(rates(canary), rates(control))
    figures = {
        "seed": seed,
        "effect": effect,
        "verdict": judgement.verdict.value,
        "score": judgement.score,
        "canary": len(canary),
        "control": len(control),
        "evidence": judgement.evidence,
    }
    return judgement.verdict, figures


PAUSES = (GateVerdict.MARGINAL, GateVerdict.FAIL)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--aa", type=int, default=40, help="A/A campaigns (default 40)")
    p.add_argument("--bad", type=int, default=20, help="bad-release campaigns per effect (default 20)")
    p.add_argument("--vehicles", type=int, default=600, help="fleet per campaign (default 600)")
    p.add_argument("--soak-hours", type=float, default=1.0, help="simulated soak (default 1 h)")
    p.add_argument("--json", action="store_true", help="print every campaign's figures as JSON lines")
    args = p.parse_args(argv)
    started = time.perf_counter()
    runs: dict[str, Counter[GateVerdict]] = {}
    examples: dict[str, str] = {}
    plan = [("A/A", None, 1000 + i) for i in range(args.aa)]
    plan += [("dtc=P0A80@5", "dtc=P0A80@5", 2000 + i) for i in range(args.bad)]
    plan += [("parked_drain=3", "parked_drain=3", 3000 + i) for i in range(args.bad)]
    for label, effect, seed in plan:
        verdict, figures = campaign(seed, args.vehicles, args.soak_hours, effect)
        runs.setdefault(label, Counter())[verdict] += 1
        if args.json:
            print(json.dumps(figures))
        if verdict in PAUSES and label not in examples:
            examples[label] = f"{figures['verdict']}: {figures['evidence']}"
    print(
        f"{args.vehicles} vehicles per campaign (canary a third), soak {args.soak_hours:g} h, "
        f"{time.perf_counter() - started:.0f} s"
    )
    for label, verdicts in runs.items():
        total = sum(verdicts.values())
        paused = sum(verdicts[v] for v in PAUSES)
        kind = "false pauses" if label == "A/A" else "caught"
        detail = ", ".join(f"{v.value} {n}" for v, n in sorted(verdicts.items()))
        print(f"{label:<16} {kind}: {paused}/{total} ({100 * paused / total:.1f} %)  [{detail}]")
        if label in examples:
            print(f"{'':<16} e.g. {examples[label]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
