"""Read models for campaigns: the list with progress, and one campaign's waves, funnel and timeline."""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any

import pandas as pd

from fleetota_core.adapters.table_reader import query_partition, scan_table
from fleetota_core.domain.campaign import ACTIVE_STATES, CampaignCounters
from fleetota_core.domain.deployment import DeploymentState

if TYPE_CHECKING:
    from fleetota_core.adapters.clients import ClientFactory
    from fleetota_core.adapters.resources import Resources

_STATES = frozenset(s.value for s in DeploymentState)
_COUNTER = re.compile(r"w(?P<wave>\d+)_(?P<kind>ok|fail)")
# The funnel follows the main path; a deployment counts at every stage it has passed.
FUNNEL = ("ELIGIBLE", "NOTIFIED", "DOWNLOADING", "VERIFYING", "INSTALLING", "SUCCEEDED")
_PASSED = {
    "ELIGIBLE": {"ELIGIBLE"}
    | set(FUNNEL[1:])
    | {"FAILED", "RETRY_SCHEDULED", "TIMED_OUT", "REJECTED", "ROLLED_BACK"},
    "NOTIFIED": set(FUNNEL[1:]) | {"FAILED", "RETRY_SCHEDULED", "TIMED_OUT", "REJECTED", "ROLLED_BACK"},
    "DOWNLOADING": set(FUNNEL[2:]) | {"FAILED", "RETRY_SCHEDULED", "ROLLED_BACK"},
    "VERIFYING": set(FUNNEL[3:]) | {"ROLLED_BACK"},
    "INSTALLING": set(FUNNEL[4:]) | {"ROLLED_BACK"},
    "SUCCEEDED": {"SUCCEEDED"},
}
SUMMARY_COLUMNS = [
    "campaign_id", "name", "state", "release_version", "kind", "total", "succeeded", "failed",
    "in_flight", "executed", "progress", "current_wave", "waves", "created_at", "created_by",
    "state_reason", "active",
]  # fmt: skip


def _spec(item: dict[str, Any]) -> dict[str, Any]:
    spec = item.get("spec") or {}
    if isinstance(spec, str):
        try:
            spec = json.loads(spec)
        except ValueError:
            spec = {}
    return spec if isinstance(spec, dict) else {}


def counters_of(item: dict[str, Any]) -> CampaignCounters:
    """The counters the deployment store keeps on the campaign item.

    They are flat attributes updated in each deployment transaction: ``n_<STATE>`` per state and
    ``w<wave>_ok`` / ``w<wave>_fail`` per wave.
    """
    states: dict[str, int] = {}
    ok: dict[int, int] = {}
    failed: dict[int, int] = {}
    for name, value in item.items():
        if not isinstance(value, int | float) or isinstance(value, bool):
            continue
        match = _COUNTER.fullmatch(name)
        if name.startswith("n_") and name[2:] in _STATES:
            states[name[2:]] = int(value)
        elif match:
            (ok if match["kind"] == "ok" else failed)[int(match["wave"])] = int(value)
    waves = max([*ok, *failed], default=-1) + 1
    return CampaignCounters(
        states=states,
        wave_succeeded=[ok.get(w, 0) for w in range(waves)],
        wave_failed=[failed.get(w, 0) for w in range(waves)],
    )


def summary_row(item: dict[str, Any]) -> dict[str, Any]:
    """One campaign item as a flat row for the list and the KPIs."""
    spec, counters = _spec(item), counters_of(item)
    sizes = [int(s) for s in item.get("sizes") or item.get("wave_sizes") or []]
    total = int(item.get("total") or item.get("matched") or sum(sizes) or sum(counters.states.values()))
    state = str(item.get("state", "DRAFT"))
    return {
        "campaign_id": item.get("campaign_id", ""),
        "name": item.get("name") or spec.get("name") or item.get("campaign_id", ""),
        "state": state,
        "release_version": item.get("release_version") or spec.get("release_version", ""),
        "kind": spec.get("kind", item.get("kind", "update")),
        "total": total,
        "succeeded": counters.succeeded,
        "failed": counters.failed,
        "in_flight": counters.in_flight,
        "executed": counters.executed,
        "progress": (counters.finished / total) if total else 0.0,
        "current_wave": int(item.get("current_wave", 0)) + 1,
        "waves": len(spec.get("waves") or sizes or [1]),
        "created_at": item.get("created_at"),
        "created_by": item.get("created_by") or item.get("operator", ""),
        "state_reason": item.get("state_reason") or item.get("reason") or "",
        "active": state in {s.value for s in ACTIVE_STATES},
    }


def campaign_summary(clients: ClientFactory, resources: Resources) -> pd.DataFrame:
    """Every campaign, newest first. The campaigns table is small (one item per campaign)."""
    rows = [summary_row(item) for item in scan_table(clients.dynamodb, resources.campaigns_table)]
    df = pd.DataFrame(rows, columns=SUMMARY_COLUMNS)
    df["created_at"] = pd.to_datetime(df["created_at"], utc=True, errors="coerce", format="ISO8601")
    return df.sort_values("created_at", ascending=False, na_position="last", ignore_index=True)


def wave_progress(item: dict[str, Any]) -> pd.DataFrame:
    """Per wave: size, succeeded, failed, and whether it has started."""
    counters = counters_of(item)
    sizes = [int(s) for s in item.get("sizes") or item.get("wave_sizes") or []]
    current = int(item.get("current_wave", 0))
    rows = []
    for index, size in enumerate(sizes):
        ok = counters.wave_succeeded[index] if index < len(counters.wave_succeeded) else 0
        bad = counters.wave_failed[index] if index < len(counters.wave_failed) else 0
        rows.append(
            {
                "wave": index + 1,
                "size": size,
                "succeeded": ok,
                "failed": bad,
                "pending": max(size - ok - bad, 0),
                "status": "done" if index < current else ("current" if index == current else "waiting"),
            }
        )
    return pd.DataFrame(rows, columns=["wave", "size", "succeeded", "failed", "pending", "status"])


def funnel(counters: CampaignCounters) -> pd.DataFrame:
    """How many deployments reached each main-path stage (from the state counters)."""
    rows = [
        {"stage": stage, "deployments": sum(n for s, n in counters.states.items() if s in _PASSED[stage])}
        for stage in FUNNEL
    ]
    return pd.DataFrame(rows)


def state_counts(counters: CampaignCounters) -> pd.DataFrame:
    order = [s.value for s in DeploymentState]
    rows = [
        {"state": s, "deployments": counters.states.get(s, 0)} for s in order if counters.states.get(s, 0)
    ]
    return pd.DataFrame(rows, columns=["state", "deployments"])


# Deferral reasons carry numbers ("signal -120 dBm < -110 dBm"); group them by the rule.
_RULES = {
    "battery": "battery below minimum",
    "driving": "driving",
    "network": "network not allowed",
    "signal": "signal below minimum",
    "outside": "outside maintenance window",
    "offline": "offline",
    "no": "no telemetry yet",
}


def reason_group(reason: str) -> str:
    return _RULES.get(str(reason).split(" ", 1)[0], str(reason))


def reasons(deps: pd.DataFrame) -> pd.DataFrame:
    """Failure and deferral reasons with counts: ``kind, reason, deployments``."""
    if deps.empty or "state" not in deps.columns:
        return pd.DataFrame(columns=["kind", "reason", "deployments"])
    deps = deps.assign(
        **{c: deps.get(c, pd.Series(None, index=deps.index)) for c in ("error_code", "reason")}
    )
    failed = {"FAILED", "RETRY_SCHEDULED", "TIMED_OUT", "REJECTED", "ROLLED_BACK"}
    df = deps.assign(
        kind=deps["state"].map(
            lambda s: "deferred" if s == "DEFERRED" else ("failed" if s in failed else None)
        ),
        why=deps["error_code"]
        .astype(object)
        .fillna(deps["reason"].astype(object).map(reason_group, na_action="ignore"))
        .fillna("unspecified"),
    ).dropna(subset=["kind"])
    out = df.groupby(["kind", "why"]).size().reset_index(name="deployments").rename(columns={"why": "reason"})
    return out.sort_values("deployments", ascending=False, ignore_index=True)


def timeline(clients: ClientFactory, resources: Resources, campaign_id: str) -> pd.DataFrame:
    """The campaign's audit trail, oldest first: ``when, event, operator, detail``."""
    items = query_partition(clients.dynamodb, resources.audit_table, "entity_id", campaign_id)
    rows = [
        {
            "when": pd.to_datetime(str(i.get("event_ts", "")).split("#", 1)[0], utc=True, errors="coerce"),
            "event": i.get("event") or i.get("action") or i.get("kind", ""),
            "operator": i.get("operator") or i.get("actor", ""),
            "detail": i.get("detail") or i.get("reason") or "",
        }
        for i in items
    ]
    return pd.DataFrame(rows, columns=["when", "event", "operator", "detail"])
