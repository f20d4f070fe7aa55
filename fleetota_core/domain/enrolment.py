"""Continuous campaigns (AWS IoT Jobs' continuous jobs on dynamic groups): who may join, and how.

A vehicle is for a campaign when the target filter matches it and the release can take it from its
current version. The same rule picks the vehicles at creation (``services/campaigns/create.py``) and
the ones that join later (``services/campaigns/enrolment.py``), so a vehicle never joins a continuous
campaign that it would not have been targeted by at creation.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING, NamedTuple

from fleetota_core.domain.firmware import SemVer
from fleetota_core.errors import ValidationError

if TYPE_CHECKING:
    from fleetota_core.domain.campaign import CampaignSpec
    from fleetota_core.domain.firmware import FirmwareRelease

NOT_TARGETED = "not matched by the target filter"


class Candidate(NamedTuple):
    """A vehicle as campaign creation targets it: its registered identity and installed version.

    A plain tuple, not a :class:`~fleetota_core.domain.vehicle.Vehicle`: creation needs nothing else
    of the vehicle's state, and a 1,000,000-vehicle campaign builds one per vehicle."""

    vin: str
    model: str
    hw_rev: str
    region: str
    firmware_version: str


@functools.lru_cache(maxsize=4096)
def _semver(text: str) -> SemVer:
    # A fleet runs a handful of versions: targeting 1,000,000 vehicles parses each once, not 2M times.
    return SemVer(text)


def why_not(
    spec: CampaignSpec,
    release: FirmwareRelease,
    vin: str,
    model: str | None,
    hw_rev: str | None,
    region: str | None,
    version: str | None,
) -> str | None:
    """None if the vehicle is for the campaign; else why not (``NOT_TARGETED``: the filter misses it).

    ``region`` None: not known here, so not checked (a first look, confirmed with the registry's).
    """
    if model is None or hw_rev is None or version is None:
        return NOT_TARGETED
    target = spec.target if region is not None else spec.target.model_copy(update={"regions": ()})
    if not target.matches(vin, model, hw_rev, region or "unknown", version):
        return NOT_TARGETED
    manifest = release.manifest
    if not manifest.is_compatible(model, hw_rev):
        return "incompatible model or hardware revision"
    try:
        current, wanted = _semver(version), _semver(release.version)
    except ValidationError:
        return NOT_TARGETED
    if current == wanted:
        return f"already on {release.version}"
    if spec.kind == "update" and current > wanted:
        return f"newer than {release.version}"
    if spec.kind == "update" and not manifest.accepts_source(version):
        return f"below minimum source version {manifest.min_from_version}"
    return None


# (vin, model, hw_rev, region, version) -> why not, as :func:`why_not` answers for one campaign.
WhyNot = Callable[[str, str | None, str | None, str | None, str | None], str | None]


def why_not_for(spec: CampaignSpec, release: FirmwareRelease) -> WhyNot:
    """:func:`why_not` for one campaign, ``(vin, model, hw_rev, region, version)`` -> the same answer.

    Past the filter's VIN list the answer depends only on model, hardware revision, region and
    version, of which a fleet has a few hundred combinations: each is judged once, not per vehicle.
    """
    vins = frozenset(spec.target.vins)
    judged: dict[tuple[str | None, str | None, str | None, str | None], str | None] = {}

    def check(
        vin: str, model: str | None, hw_rev: str | None, region: str | None, version: str | None
    ) -> str | None:
        if vins and vin not in vins:
            return NOT_TARGETED
        key = (model, hw_rev, region, version)
        if key not in judged:
            judged[key] = why_not(spec, release, vin, model, hw_rev, region, version)
        return judged[key]

    return check


class Enrolment(Enum):
    """What one attempt to add a vehicle to a continuous campaign did."""

    JOINED = "joined"  # a new PENDING deployment, counted on the campaign in the same write
    ALREADY = "already"  # the campaign already has a deployment for this vehicle: never twice
    CLOSED = "closed"  # the campaign stopped taking vehicles meanwhile (finished, aborted, completed)


@dataclass(frozen=True)
class ChangedVehicle:
    """A vehicle whose stored state was written, as the change feed saw it (state, not identity:
    a candidate is confirmed through :class:`Vehicles`, which reads the registry)."""

    vin: str
    model: str | None
    hw_rev: str | None
    region: str | None
    firmware_version: str | None


@dataclass(frozen=True)
class FleetChangeBatch:
    """Vehicles written in one step of the feed, and the token to resume after them."""

    token: str
    vehicles: list[ChangedVehicle]
