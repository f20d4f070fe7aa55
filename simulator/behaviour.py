"""Where a vehicle goes next and when: daily routines in the metro's local time.

Commuters drive to work on weekday mornings and home in the evening, with the odd errand; fleet
vehicles leave the depot in the morning, make stops all day and return for the night. Both stay
parked most of the day, and drivers head for a fast charger when the battery runs low.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from simulator.environment import DAY
from simulator.sites import SiteKind

if TYPE_CHECKING:
    import random

    from simulator.environment import Conditions
    from simulator.sites import Site
    from simulator.vehicle import SimVehicle

HOUR = 3600.0
MINUTE = 60.0


def plan_next(v: SimVehicle, t: float, cond: Conditions, rng: random.Random) -> tuple[float, Site]:
    """When the vehicle parked at ``v.site`` leaves next, and for where."""
    site = v.site
    assert site is not None
    if site.kind is SiteKind.CHARGER:
        # Stay until roughly topped up to 80 %, then carry on with the day.
        need = max(0.0, 80.0 - v.soc) / 100.0 * v.battery_kwh
        stay = need / max(30.0, min(v.max_dc_kw, site.charger_kw) * 0.7) * HOUR
        return t + max(10 * MINUTE, stay) + rng.uniform(0, 10 * MINUTE), _after_charge(v, t, cond, rng)
    if v.soc < v.low_soc and not _charges_here(v, site):
        return t + rng.uniform(5, 25) * MINUTE, _nearest(v, v.zone.chargers)
    depart, dest = _fleet(v, site, t, cond, rng) if v.role == "fleet" else _commuter(v, site, t, cond, rng)
    if v.soc < v.low_soc + 10 and _charges_here(v, site):
        # Nearly empty where it can charge: nobody leaves before there is a useful range again.
        need = (v.low_soc + 25 - v.soc) / 100.0 * v.battery_kwh
        depart = max(depart, t + need / min(site.charger_kw, 11.0) * HOUR)
    return depart, dest


def _nearest(v: SimVehicle, sites: tuple[Site, ...]) -> Site:
    return min(sites, key=lambda s: v.distance_km(s.lat, s.lon))


def _charges_here(v: SimVehicle, site: Site) -> bool:
    return site.charger_kw > 0 and site.kind is not SiteKind.WORK


def _after_charge(v: SimVehicle, t: float, cond: Conditions, rng: random.Random) -> Site:
    if v.role == "fleet":
        return rng.choice(v.zone.stops) if _in_shift(t, cond) else _depot(v)
    return v.home


def _depot(v: SimVehicle) -> Site:
    # A fleet vehicle's "home" is its depot.
    return v.home


def _in_shift(t: float, cond: Conditions) -> bool:
    return cond.weekday(t) < 6 and 7 * HOUR <= cond.local_seconds(t) < 16 * HOUR


def _next_local(t: float, cond: Conditions, at_s: float) -> float:
    """The next epoch second after ``t`` that is ``at_s`` seconds past local midnight."""
    local = cond.local_seconds(t)
    delta = at_s - local
    return t + (delta if delta > 0 else delta + DAY)


def _fleet(v: SimVehicle, site: Site, t: float, cond: Conditions, rng: random.Random) -> tuple[float, Site]:
    local = cond.local_seconds(t)
    if site.kind is SiteKind.DEPOT:
        if _in_shift(t, cond) and local < 15.5 * HOUR:
            return t + rng.uniform(10, 45) * MINUTE, rng.choice(v.zone.stops)
        depart = _next_local(t, cond, rng.uniform(7.0, 8.5) * HOUR)
        if cond.weekday(depart) == 6:  # no Sunday shifts
            depart += DAY
        return depart, rng.choice(v.zone.stops)
    # At a customer stop: a short dwell, then the next stop or back to the depot.
    depart = t + rng.uniform(10, 40) * MINUTE
    if _in_shift(depart, cond) and cond.local_seconds(depart) < 16 * HOUR:
        return depart, rng.choice(v.zone.stops)
    return depart, _depot(v)


def _commuter(
    v: SimVehicle, site: Site, t: float, cond: Conditions, rng: random.Random
) -> tuple[float, Site]:
    local = cond.local_seconds(t)
    weekday = cond.weekday(t) < 5
    if site.kind is SiteKind.HOME:
        if weekday and v.work is not None and local < 6.5 * HOUR:
            return _next_local(t, cond, rng.uniform(6.75, 9.0) * HOUR), v.work
        if local < 19.5 * HOUR and rng.random() < (0.3 if weekday else 0.6):
            return t + rng.uniform(0.5, 3.0) * HOUR, rng.choice(v.zone.stops)
        depart = _next_local(t, cond, rng.uniform(6.75, 9.0) * HOUR)
        if cond.weekday(depart) < 5 and v.work is not None:
            return depart, v.work
        # Weekend (or no workplace): a late-morning outing.
        return depart + rng.uniform(2.0, 5.0) * HOUR, rng.choice(v.zone.stops)
    if site.kind is SiteKind.WORK:
        depart = _next_local(t, cond, rng.uniform(16.5, 18.5) * HOUR)
        if depart - t > 11 * HOUR:  # arrived after the usual leaving time
            depart = t + rng.uniform(2.0, 5.0) * HOUR
        return depart, rng.choice(v.zone.stops) if rng.random() < 0.15 else v.home
    # An errand: shops, gym, a friend's place.
    return t + rng.uniform(20, 90) * MINUTE, v.home
