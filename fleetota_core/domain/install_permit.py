"""The signed install permit: the update manager's word that a staged image may install now.

A ``window`` campaign (and a ``consent`` campaign past its deadline) stages the image on the vehicle
and installs only on a permit, which the tick signs with the director key when the vehicle is
install-eligible by its latest telemetry. The permit is bound to one job (VIN, deployment, attempt,
target version) and is valid for a short time, so a replayed or stale permit installs nothing.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from fleetota_core.domain.firmware import canonical_json, verify_signature
from fleetota_core.domain.job_document import MAX_CLOCK_SKEW

if TYPE_CHECKING:
    from fleetota_core.domain.job_document import JobDocument, TrustedKeys

# Long enough for a vehicle to start installing; short enough that an old permit is refused once the
# maintenance window it was sent in has passed.
PERMIT_LIFETIME = timedelta(minutes=30)


class InstallPermit(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: str = Field(default="install-permit", pattern="^install-permit$")
    vin: str
    campaign_id: str
    deployment_id: str
    attempt: int = Field(ge=1)
    target_version: str
    issued_at: AwareDatetime
    expires_at: AwareDatetime

    def signed_bytes(self) -> bytes:
        return canonical_json(self.model_dump(mode="json"))


class SignedInstallPermit(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    permit: InstallPermit
    signature: str
    key_id: str


def permit_for(doc: JobDocument, now: datetime) -> InstallPermit:
    """The permit to install ``doc``'s staged image, issued ``now``."""
    return InstallPermit(
        vin=doc.vin,
        campaign_id=doc.campaign_id,
        deployment_id=doc.deployment_id,
        attempt=doc.attempt,
        target_version=doc.release.version,
        issued_at=now,
        expires_at=now + PERMIT_LIFETIME,
    )


def permit_problem(
    signed: SignedInstallPermit, keys: TrustedKeys, doc: JobDocument, now: datetime
) -> str | None:
    """None when ``signed`` lets the vehicle install ``doc`` now, else why not (the vehicle ignores it)."""
    permit = signed.permit
    if not verify_signature(keys.director, permit.signed_bytes(), signed.signature):
        return "install permit signature does not verify with the director key"
    expected = permit_for(doc, permit.issued_at)
    bound = ("vin", "campaign_id", "deployment_id", "attempt", "target_version")
    wrong = [name for name in bound if getattr(permit, name) != getattr(expected, name)]
    if wrong:
        return f"install permit is for another job ({', '.join(wrong)})"
    if permit.issued_at > now + MAX_CLOCK_SKEW or permit.expires_at - permit.issued_at > PERMIT_LIFETIME:
        return "install permit times are invalid"
    if now >= permit.expires_at:
        return "install permit expired"
    return None
