"""The campaign create form: raw widget values in, a :class:`CampaignSpec` or per-field errors out.

Errors are keyed by form field so the page can show each message under the widget it is about.
"""

from __future__ import annotations

import re
from datetime import datetime, time
from typing import Any

from pydantic import ValidationError as PydanticValidationError

from fleetota_core.domain.campaign import CampaignSpec
from fleetota_core.domain.delivery import DownloadNetworks, InstallPolicy
from fleetota_core.domain.telemetry import NetworkType
from fleetota_core.domain.vin import InvalidVINError, validate_vin

# pydantic location (joined with ".") -> form field; the first matching prefix wins.
_FIELD_FOR_LOC = (
    ("target.vins", "vins"),
    ("target.models", "models"),
    ("target.hw_revs", "hw_revs"),
    ("target.regions", "regions"),
    ("target.current_versions", "current_versions"),
    ("waves", "waves"),
    ("abort.failure_pct", "abort_failure_pct"),
    ("abort.min_executed", "abort_min_executed"),
    ("retry.max_attempts", "retry_max_attempts"),
    ("retry.backoff_base_s", "retry_backoff_s"),
    ("eligibility.min_soc_pct", "min_soc_pct"),
    ("eligibility.min_signal_dbm", "min_signal_dbm"),
    ("eligibility.networks", "networks"),
    ("eligibility.maintenance_windows", "window"),
    ("in_progress_timeout_s", "timeout_min"),
    ("delivery.consent_deadline_s", "consent_deadline_h"),
    ("delivery.cellular_max_mb", "cellular_max_mb"),
    ("delivery.cellular_budget_gb", "cellular_budget_gb"),
    ("delivery.cellular_cost_per_gb", "cellular_cost_per_gb"),
    ("delivery.cellular_after", "cellular_after"),
    ("delivery", "delivery"),
)
INSTALL_POLICIES = [p.value for p in InstallPolicy]
DOWNLOAD_NETWORKS = [n.value for n in DownloadNetworks]
_WAVE = re.compile(r"^\s*(?P<n>\d+(?:\.\d+)?)\s*(?P<pct>%?)\s*$")

# The networks an operator may allow downloads on (a vehicle with none is offline).
NETWORK_CHOICES = [n.value for n in NetworkType if n is not NetworkType.NONE]


def parse_waves(text: str, success_pct: float, error_pct: float) -> list[dict[str, Any]]:
    """``"5%, 25%, 70%"`` or ``"50, 200, 100%"`` -> wave dicts; raises ValueError naming the bad part."""
    parts = [p for p in text.split(",") if p.strip()]
    if not parts:
        raise ValueError("enter at least one wave, e.g. 10%, 30%, 60%")
    waves = []
    for part in parts:
        match = _WAVE.match(part)
        if not match:
            raise ValueError(
                f"{part.strip()!r} is not a wave: use a percentage (10%) or a vehicle count (50)"
            )
        value = float(match["n"])
        size = {"percent": value} if match["pct"] else {"size": int(value)}
        if match["pct"] and not 0 < value <= 100:
            raise ValueError(f"wave {part.strip()} must be between 0% and 100%")
        if not match["pct"] and value != int(value):
            raise ValueError(f"wave size {part.strip()} must be a whole number of vehicles")
        waves.append({**size, "success_threshold_pct": success_pct, "error_threshold_pct": error_pct})
    percents = sum(w.get("percent", 0) for w in waves)
    if percents > 100.0001:
        raise ValueError(f"wave percentages add up to {percents:g}%, more than 100%")
    return waves


def parse_vins(text: str) -> list[str]:
    vins = [v.strip().upper() for v in re.split(r"[\s,;]+", text) if v.strip()]
    for vin in vins:
        try:
            validate_vin(vin)
        except InvalidVINError as exc:
            raise ValueError(f"{vin}: {exc}") from exc
    return vins


def _field(loc: tuple[Any, ...]) -> str:
    dotted = ".".join(str(p) for p in loc)
    for prefix, field in _FIELD_FOR_LOC:
        if dotted.startswith(prefix):
            return field
    return str(loc[0]) if loc else "form"


def build_spec(values: dict[str, Any]) -> tuple[CampaignSpec | None, dict[str, str]]:
    """Validate every field; returns the spec, or None and ``{field: message}`` for each bad field."""
    errors: dict[str, str] = {}
    try:
        waves = parse_waves(values.get("waves", ""), values["success_pct"], values["error_pct"])
    except ValueError as exc:
        errors["waves"], waves = str(exc), []
    try:
        vins = parse_vins(values.get("vins", ""))
    except ValueError as exc:
        errors["vins"], vins = str(exc), []
    windows = []
    start, end = values.get("window_start"), values.get("window_end")
    if values.get("use_window"):
        if not isinstance(start, time) or not isinstance(end, time):
            errors["window"] = "choose a start and an end time for the maintenance window"
        elif start == end:
            errors["window"] = "the maintenance window needs different start and end times"
        elif not values.get("window_days"):
            errors["window"] = "choose at least one day for the maintenance window"
        else:
            windows.append({"start": start, "end": end, "days": tuple(values["window_days"])})
    start_at = values.get("start_at")
    if isinstance(start_at, datetime) and start_at.tzinfo is None:
        errors["start_at"] = "the scheduled start needs a time zone"
    if not values.get("release_version"):
        errors["release_version"] = "choose a published firmware release (publish one on the Firmware page)"
    raw = {
        "name": (values.get("name") or "").strip(),
        "release_version": values.get("release_version") or "0.0.0",
        "description": values.get("description", ""),
        "kind": values.get("kind", "update"),
        "critical": bool(values.get("critical", False)),
        "continuous": bool(values.get("continuous", False)),
        "target": {
            "models": tuple(values.get("models") or ()),
            "hw_revs": tuple(values.get("hw_revs") or ()),
            "regions": tuple(values.get("regions") or ()),
            "current_versions": tuple(values.get("current_versions") or ()),
            "vins": tuple(vins),
        },
        "waves": tuple(waves) or ({"percent": 100},),
        "abort": {"failure_pct": values["abort_failure_pct"], "min_executed": values["abort_min_executed"]},
        "max_in_flight": values["max_in_flight"],
        "in_progress_timeout_s": int(values["timeout_min"] * 60),
        "retry": {"max_attempts": values["retry_max_attempts"], "backoff_base_s": values["retry_backoff_s"]},
        "eligibility": {
            "min_soc_pct": values["min_soc_pct"],
            "require_parked": values["require_parked"],
            "networks": tuple(values.get("networks") or ()),
            "min_signal_dbm": values["min_signal_dbm"],
            "maintenance_windows": tuple(windows),
        },
        "start_at": start_at if "start_at" not in errors else None,
        "delivery": delivery_values(values),
    }
    if not raw["name"]:
        errors["name"] = "give the campaign a name operators will recognise"
    if not raw["eligibility"]["networks"]:
        errors["networks"] = "allow at least one network type for downloads"
    try:
        spec = CampaignSpec.model_validate(raw)
    except PydanticValidationError as exc:
        for error in exc.errors():
            errors.setdefault(_field(tuple(error["loc"])), error["msg"].removeprefix("Value error, "))
        return None, errors
    return (None, errors) if errors else (spec, {})


def delivery_values(values: dict[str, Any]) -> dict[str, Any]:
    """The spec's ``delivery`` section from the form (a budget and a size limit only when ticked)."""
    delivery: dict[str, Any] = {
        "install": values.get("install_policy", "immediate"),
        "download_networks": values.get("download_networks", "any"),
        "cellular_cost_per_gb": values.get("cellular_cost_per_gb", 2.0),
    }
    if values.get("consent_deadline_h") is not None:
        delivery["consent_deadline_s"] = int(values["consent_deadline_h"] * 3600)
    if values.get("use_cellular_budget"):
        delivery["cellular_budget_gb"] = values.get("cellular_budget_gb")
    if values.get("use_cellular_max_mb"):
        delivery["cellular_max_mb"] = values.get("cellular_max_mb")
    if values.get("cellular_after") is not None:
        delivery["cellular_after"] = values["cellular_after"]
    return delivery
