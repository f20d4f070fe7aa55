"""A campaign's deployments at its creation: one PENDING deployment per targeted vehicle."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from fleetota_core.domain.deployment import Deployment, DeploymentState

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence
    from datetime import datetime

    from fleetota_core.domain.enrolment import Candidate


@dataclass(frozen=True)
class NewDeployments:
    """The deployments a campaign starts with, in rollout order: ``vehicles[i]`` in wave ``waves[i]``.

    They share every field but the vehicle's own (VIN, wave, model, hardware revision, version), so a
    store can write a million of them from one encoded item instead of a ``Deployment`` each.
    """

    campaign_id: str
    next_action_at: datetime
    created_at: datetime
    vehicles: Sequence[Candidate]
    waves: Sequence[int]

    def __post_init__(self) -> None:
        if len(self.vehicles) != len(self.waves):
            raise ValueError(f"{len(self.vehicles)} vehicles but {len(self.waves)} waves")

    def __len__(self) -> int:
        return len(self.vehicles)

    def deployments(self) -> Iterator[Deployment]:
        """Each one as a :class:`Deployment`, as it is stored."""
        for vehicle, wave in zip(self.vehicles, self.waves, strict=True):
            yield self.deployment(vehicle, wave)

    def deployment(self, vehicle: Candidate, wave: int) -> Deployment:
        return Deployment(
            campaign_id=self.campaign_id,
            vin=vehicle.vin,
            wave=wave,
            state=DeploymentState.PENDING,
            next_action_at=self.next_action_at,
            model=vehicle.model,
            hw_rev=vehicle.hw_rev,
            from_version=vehicle.firmware_version,
            created_at=self.created_at,
        )
