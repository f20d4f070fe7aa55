"""Read model for the firmware page: releases with their signature checked against the KMS public key."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import pandas as pd

from fleetota_core.domain.delta import verify_delta
from fleetota_core.domain.firmware import load_public_key, verify_release
from fleetota_core.domain.telemetry import SEMVER_PATTERN
from fleetota_core.services.campaigns.releases import list_releases, publish_release
from fleetota_core.services.delta.publish import publish_with_deltas

if TYPE_CHECKING:
    from fleetota_core.services.campaigns.ports import CampaignPorts

# Publishing is the firmware page's one action, re-exported so that pages depend on views only.
__all__ = [
    "DELTA_COLUMNS",
    "RELEASE_COLUMNS",
    "deltas_frame",
    "publish_release",
    "publish_with_deltas",
    "release_form_errors",
    "releases_frame",
]

RELEASE_COLUMNS = [
    "version", "signature", "models", "hw_revs", "min_from_version", "size_mb", "deltas", "sha256",
    "created_at", "created_by", "notes",
]  # fmt: skip
DELTA_COLUMNS = ["version", "from_version", "signature", "delta_kb", "full_kb", "smaller_x", "sha256"]


def releases_frame(ports: CampaignPorts) -> pd.DataFrame:
    """Every release, newest first, with ``signature`` = "valid" / "INVALID" checked offline."""
    releases = list_releases(ports)
    if not releases:
        return pd.DataFrame(columns=RELEASE_COLUMNS)
    # One KMS call for the public key, then every signature is checked locally, as a vehicle would.
    public_key = load_public_key(ports.image_signer.public_key_der())
    rows = []
    for release in releases:
        m = release.manifest
        rows.append(
            {
                "version": m.version,
                "signature": "valid" if verify_release(public_key, release) else "INVALID",
                "models": ", ".join(m.models),
                "hw_revs": ", ".join(m.hw_revs) or "all",
                "min_from_version": m.min_from_version or "any",
                "size_mb": m.size_bytes / 1e6,
                "deltas": ", ".join(d.source_version for d in release.deltas) or "none",
                "sha256": m.sha256,
                "created_at": m.created_at,
                "created_by": m.created_by,
                "notes": m.notes,
            }
        )
    return pd.DataFrame(rows, columns=RELEASE_COLUMNS)


def deltas_frame(ports: CampaignPorts) -> pd.DataFrame:
    """Every release's deltas: source version, size against the full image, signature (image key)."""
    releases = list_releases(ports)
    if not any(r.deltas for r in releases):
        return pd.DataFrame(columns=DELTA_COLUMNS)
    public_key = load_public_key(ports.image_signer.public_key_der())
    rows = [
        {
            "version": release.version,
            "from_version": d.source_version,
            "signature": "valid"
            if verify_delta(public_key, d) and d.manifest.fits(release.manifest)
            else "INVALID",
            "delta_kb": d.manifest.size_bytes / 1e3,
            "full_kb": release.manifest.size_bytes / 1e3,
            "smaller_x": release.manifest.size_bytes / d.manifest.size_bytes,
            "sha256": d.manifest.sha256,
        }
        for release in releases
        for d in release.deltas
    ]
    return pd.DataFrame(rows, columns=DELTA_COLUMNS)


def release_form_errors(values: dict[str, Any]) -> dict[str, str]:
    """Per-field problems of the publish form, before anything is uploaded."""
    errors: dict[str, str] = {}
    if not values.get("file"):
        errors["file"] = "choose the firmware image to upload"
    version = (values.get("version") or "").strip()
    if not re.match(SEMVER_PATTERN, version):
        errors["version"] = f"{version or 'an empty version'} is not a semantic version like 2.1.0"
    if not values.get("models"):
        errors["models"] = "choose at least one vehicle model this firmware is for"
    min_from = (values.get("min_from_version") or "").strip()
    if min_from and not re.match(SEMVER_PATTERN, min_from):
        errors["min_from_version"] = f"{min_from} is not a semantic version like 1.0.0"
    return errors
