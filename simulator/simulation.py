"""FleetSimulation: the whole fleet, one tick at a time, with store-and-forward uploads."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import TYPE_CHECKING

from simulator.change_hint import changed
from simulator.environment import conditions
from simulator.health import HealthMonitor
from simulator.record import encode
from simulator.vehicle import Role

if TYPE_CHECKING:
    from collections.abc import Callable

    from simulator.environment import Conditions
    from simulator.health import ReleaseFaults
    from simulator.ota import OtaClient
    from simulator.uploader import BatchUploader
    from simulator.vehicle import SimVehicle

# A vehicle keeps at most this many readings while it cannot upload (offline, or the backend is
# unreachable): about two weeks at a 60 s interval. The oldest are dropped first and counted, as a
# real telematics unit with bounded storage would. ``--outbox-readings`` sets it per run.
MAX_OUTBOX = 20_000


@dataclass(frozen=True)
class FaultProfile:
    """Faults to inject. ``offline_rate`` is the share of time each vehicle spends in outages."""

    offline_rate: float = 0.0
    outage_minutes: float = 30.0
    install_failure_rate: float = 0.0  # read by the OTA client

    def __post_init__(self) -> None:
        if not 0.0 <= self.offline_rate < 1.0:
            raise ValueError("offline rate must be in [0, 1)")
        if not 0.0 <= self.install_failure_rate <= 1.0:
            raise ValueError("install failure rate must be in [0, 1]")
        if self.outage_minutes <= 0:
            raise ValueError("outage minutes must be positive")


class FleetSimulation:
    """Advances every vehicle by ``interval`` seconds per :meth:`step` and hands readings to the uploader.

    Each vehicle reads once per tick at its own phase inside the interval. Online vehicles upload
    what they held back plus the new reading; offline vehicles keep readings until they reconnect.
    """

    def __init__(
        self,
        vehicles: list[SimVehicle],
        uploader: BatchUploader,
        *,
        start: float,
        interval: float,
        seed: int,
        faults: FaultProfile | None = None,
        ota_client: OtaClient | None = None,
        stamp: Callable[[float], float] | None = None,
        outbox_size: int = MAX_OUTBOX,
        release_faults: ReleaseFaults | None = None,
    ) -> None:
        if interval <= 0:
            raise ValueError("interval must be positive")
        if outbox_size < 1:
            raise ValueError("outbox size must be at least 1")
        self.outbox_size = outbox_size
        self.vehicles = vehicles
        self.by_vin = {v.vin: v for v in vehicles}
        self.uploader = uploader
        self.interval = interval
        self.faults = faults or FaultProfile()
        self.ota_client = ota_client
        # Simulated time -> the time readings carry (and batches are keyed by); identity by default.
        self.stamp: Callable[[float], float] = stamp or (lambda t: t)
        self.t = start  # end of the last simulated tick
        self.ticks = 0
        self.dropped = 0  # oldest readings dropped from a full outbox
        self.forwarded = 0  # readings uploaded from an outbox: taken while the vehicle could not upload
        self.held_for_backend = 0  # readings an online vehicle held because the backend was unreachable
        self.readings = 0  # readings taken (= ticks x vehicles once each interval is complete)
        self._tick_conds: dict[str, Conditions] | None = None
        self._slice_cache: dict[int, list[list[SimVehicle]]] = {}
        self.salt = seed & 0xFFFF_FFFF
        self.rng = random.Random(f"run:{seed}")  # its own stream: fleet generation stays unchanged
        self.health_rng = random.Random(f"health:{seed}")  # health events leave the trips' stream alone
        if release_faults is not None:
            for v in vehicles:
                v.health = HealthMonitor(v.vin, release_faults)
        self._metros = {v.metro.name: v.metro.timezone for v in vehicles}
        self._place(start)

    def _conditions(self, t: float) -> dict[str, Conditions]:
        return {name: conditions(name, tz, t) for name, tz in self._metros.items()}

    def _place(self, t: float) -> None:
        """Start each vehicle where it would be at this local time: at work, on a round, or home."""
        conds = self._conditions(t)
        rng = self.rng
        for v in self.vehicles:
            cond = conds[v.metro.name]
            hour = cond.local_seconds(t) / 3600.0
            working = cond.weekday(t) < 5 and 9.5 <= hour < 16.0
            site = v.home
            if working and v.role is Role.FLEET:
                site = rng.choice(v.zone.stops)
            elif working and v.work is not None:
                site = v.work
            v.start(t, site, cond, rng)

    @property
    def held(self) -> int:
        """Readings held by vehicles (offline, or the backend unreachable), not yet handed to the uploader."""
        return sum(len(v.outbox) for v in self.vehicles)

    @property
    def online(self) -> int:
        return sum(1 for v in self.vehicles if v.online)

    def step(self) -> None:
        """Simulate one interval, then upload what the online vehicles sent."""
        self.step_part(0, 1)

    def step_part(self, part: int, parts: int) -> None:
        """Simulate the vehicles whose phase falls in slice ``part`` of ``parts`` of the interval.

        A real-time run steps each slice when the wall clock reaches its end, so a reading waits at
        most about a slice before its upload instead of up to a whole interval; the interval ends
        with the last slice. ``parts=1`` is the whole interval in one go (as ``--out`` runs use).
        """
        t0, dt = self.t, self.interval
        if part == 0 or self._tick_conds is None:
            self._tick_conds = self._conditions(t0 + dt / 2)
        conds = self._tick_conds
        rng, ota, salt, stamp, health_rng = self.rng, self.ota_client, self.salt, self.stamp, self.health_rng
        p_outage = self._outage_probability(dt)
        mean_outage_s = self.faults.outage_minutes * 60.0
        lines: list[str] = []
        vehicles = self._slices(parts)[part]
        # An unreachable backend: vehicles keep their readings as if offline, and send them once it answers.
        backend_down, outbox_size = self.uploader.backend_down, self.outbox_size
        for v in vehicles:
            t = t0 + v.phase * dt
            observed = t - v.t
            effect = ota.on_tick(v, t) if ota is not None else None
            v.hold_parked = effect.hold_parked if effect is not None else False
            v.advance(t, conds[v.metro.name], rng)
            if effect is not None and effect.extra_energy_kwh:
                v.soc = max(0.5, v.soc - effect.extra_energy_kwh / v.battery_kwh * 100.0)
            if p_outage and t >= v.outage_until and rng.random() < p_outage:
                v.start_outage(t, rng.expovariate(1.0 / mean_outage_s))
            link_drop_s = v.health.tick(v.firmware_version, observed, health_rng)
            if link_drop_s and t >= v.outage_until:
                v.start_outage(t, link_drop_s)
            v.sense_network(t, salt, rng)
            v.health.sensed(v.network.value != "NONE")
            report = effect.report if effect is not None else None
            line = encode(v, stamp(t), report, changed(v, t, report is not None))
            v.seq += 1
            online = v.network.value != "NONE"
            if online and not backend_down:
                if v.outbox:
                    lines.extend(v.outbox)  # store and forward: the backlog goes up first
                    self.forwarded += len(v.outbox)
                    v.outbox.clear()
                lines.append(line)
            else:
                self.held_for_backend += online
                v.outbox.append(line)
                if len(v.outbox) > outbox_size:
                    del v.outbox[0]
                    self.dropped += 1
        self.readings += len(vehicles)
        last = part == parts - 1
        if last:
            self.t = t0 + dt
            self.ticks += 1
            self._tick_conds = None
        self.uploader.add(lines)
        # Slices flush often, so they keep a part-filled object back once to fill it up.
        self.uploader.flush(stamp(t0 + dt * (part + 1) / parts), hold_partial=parts > 1)

    def _slices(self, parts: int) -> list[list[SimVehicle]]:
        """The vehicles by phase slice, each in fleet order (one slice: the fleet order, unchanged)."""
        slices = self._slice_cache.get(parts)
        if slices is None:
            slices = [[] for _ in range(parts)]
            for v in self.vehicles:
                slices[min(int(v.phase * parts), parts - 1)].append(v)
            self._slice_cache[parts] = slices
        return slices

    def _outage_probability(self, dt: float) -> float:
        """Per-tick chance of a new outage, so that outages cover ``offline_rate`` of the time."""
        rate = self.faults.offline_rate
        if rate <= 0:
            return 0.0
        mean_s = self.faults.outage_minutes * 60.0
        starts_per_s = rate / ((1.0 - rate) * mean_s)
        return 1.0 - math.exp(-starts_per_s * dt)
