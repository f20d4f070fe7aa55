"""Publish a release with its deltas: plan and make them, then the one signed publish."""

from __future__ import annotations

from typing import TYPE_CHECKING

from fleetota_core.services.campaigns.releases import publish_release
from fleetota_core.services.delta.plan import DeltaPlan, plan_deltas

if TYPE_CHECKING:
    from collections.abc import Sequence

    from fleetota_core.domain.firmware import FirmwareRelease
    from fleetota_core.services.campaigns.ports import CampaignPorts


def publish_with_deltas(
    file_bytes: bytes,
    version: str,
    models: Sequence[str],
    hw_revs: Sequence[str],
    min_from_version: str | None,
    notes: str,
    operator: str,
    ports: CampaignPorts,
    *,
    filename: str = "firmware.bin",
    allowed_models: set[str] | None = None,
    deltas_from: int = 0,
    delta_from: Sequence[str] = (),
) -> tuple[FirmwareRelease, DeltaPlan]:
    """``publish_release`` with deltas from the ``deltas_from`` most common source versions of the
    release's models in the fleet and from each version in ``delta_from``; the plan says which
    sources were left out and why.
    """
    plan = DeltaPlan()
    if deltas_from or delta_from:
        plan = plan_deltas(
            ports,
            file_bytes,
            version,
            models,
            count=deltas_from,
            sources=delta_from,
            min_from_version=min_from_version,
        )
    release = publish_release(
        file_bytes,
        version,
        models,
        hw_revs,
        min_from_version,
        notes,
        operator,
        ports,
        filename=filename,
        allowed_models=allowed_models,
        deltas=plan.builds,
    )
    return release, plan
