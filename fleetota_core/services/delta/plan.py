"""Which deltas a new release carries, and making them from the published source images.

The sources are the versions most of the release's vehicles run (``--deltas-from N``), or versions
the operator names (``--delta-from V``). Each source must be a published release whose manifest
verifies with the image key and whose stored artifact has the signed sha256: the delta's manifest
binds it to that image, which is exactly what a vehicle on that version runs.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from fleetota_core.domain.delta import DeltaBuild, delta_sources
from fleetota_core.domain.firmware import MAX_DELTAS, SemVer
from fleetota_core.errors import InputError, IntegrityError
from fleetota_core.services.campaigns.release_trust import release_problem
from fleetota_core.services.delta.patch import make_patch

if TYPE_CHECKING:
    from collections.abc import Sequence

    from fleetota_core.services.campaigns.ports import CampaignPorts

MAX_SOURCE_BYTES = 1 << 30  # a source image is read whole into memory to make the patch
# A delta at or above this share of the full image is not worth a second artifact.
MAX_DELTA_SHARE = 0.9


@dataclass
class DeltaPlan:
    """The deltas made for a release, and each source left out with the reason (for the operator)."""

    builds: list[DeltaBuild] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)  # source version -> why no delta
    fleet_counts: dict[str, int] = field(default_factory=dict)  # source version -> vehicles on it


def plan_deltas(
    ports: CampaignPorts,
    target: bytes,
    version: str,
    models: Sequence[str],
    *,
    count: int = 0,
    sources: Sequence[str] = (),
    min_from_version: str | None = None,
) -> DeltaPlan:
    """Deltas to ``target`` (the new ``version``'s image) from ``sources`` and the ``count`` most
    common versions among the vehicles of ``models`` (the vehicles table); see the module docstring.
    """
    if count < 0 or count > MAX_DELTAS:
        raise InputError(f"--deltas-from must be 0..{MAX_DELTAS}, got {count}")
    for source in sources:
        SemVer(source)  # a clear error for a typo, before anything is read
    plan = DeltaPlan()
    chosen = list(dict.fromkeys(sources))
    if count:
        wanted = set(models)
        fleet = [v.firmware_version for v in ports.vehicles.all() if v.model in wanted]
        ranked = delta_sources(fleet, version, count, min_from_version)
        plan.fleet_counts = dict(ranked)
        chosen += [v for v, _ in ranked if v not in chosen]
    if len(chosen) > MAX_DELTAS:
        raise InputError(f"a release carries at most {MAX_DELTAS} deltas; {len(chosen)} asked for")
    for source in chosen:
        build, why = _build(ports, source, target, version)
        if build is None:
            plan.skipped[source] = why
        else:
            plan.builds.append(build)
    return plan


def _build(ports: CampaignPorts, source: str, target: bytes, version: str) -> tuple[DeltaBuild | None, str]:
    if SemVer(source) >= SemVer(version):
        return None, f"{source} is not older than {version}"
    release = ports.releases.get_release(source)
    if release is None:
        return None, f"{source} is not published, so its image is not in the firmware bucket"
    problem = release_problem(ports, release)
    if problem is not None:
        return None, problem
    manifest = release.manifest
    image = ports.releases.get_artifact(manifest.artifact_key, MAX_SOURCE_BYTES)
    if image is None:
        return None, f"the artifact of {source} ({manifest.artifact_key}) is missing"
    if hashlib.sha256(image).hexdigest() != manifest.sha256:
        raise IntegrityError(
            f"the stored artifact of {source} does not match its signed sha256; it was replaced "
            "after publishing. Restore or republish it before making deltas from it."
        )
    patch, window_log = make_patch(image, target)
    if len(patch) >= MAX_DELTA_SHARE * len(target):
        share = 100 * len(patch) / len(target)
        return None, f"the delta would be {share:.0f} % of the full image"
    return DeltaBuild(source=manifest, data=patch, window_log=window_log), ""
