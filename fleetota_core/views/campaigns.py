"""Read models for campaigns: the list with progress, and one campaign's waves, funnel and timeline."""

from __future__ import annotations

from dataclasses import asdict
from typing import TYPE_CHECKING

import pandas as pd

from fleetota_core.adapters.table_reader import query_partition
from fleetota_core.domain.delta import DeliveryTally, delivery_tally
from fleetota_core.domain.deployment import STAGED, DeploymentState
from fleetota_core.domain.vehicle_health import SIGNALS
from fleetota_core.services.campaigns.create import list_campaigns, list_deployments
from fleetota_core.views.text import chart_text

if TYPE_CHECKING:
    from fleetota_core.adapters.clients import ClientFactory
    from fleetota_core.adapters.resources import Resources
    from fleetota_core.domain.campaign import Campaign, CampaignCounters
    from fleetota_core.domain.health_gate import GateStatus
    from fleetota_core.services.campaigns.ports import CampaignPorts

# The funnel follows the main path; a deployment counts at every stage it has passed.
FUNNEL = ("ELIGIBLE", "NOTIFIED", "DOWNLOADING", "VERIFYING", "INSTALLING", "SUCCEEDED")
_STAGED = {s.value for s in STAGED}  # downloaded and verified, waiting to install
_PASSED = {
    "ELIGIBLE": {"ELIGIBLE"}
    | set(FUNNEL[1:])
    | _STAGED
    | {"FAILED", "RETRY_SCHEDULED", "TIMED_OUT", "REJECTED", "ROLLED_BACK"},
    "NOTIFIED": set(FUNNEL[1:])
    | _STAGED
    | {"FAILED", "RETRY_SCHEDULED", "TIMED_OUT", "REJECTED", "ROLLED_BACK"},
    "DOWNLOADING": set(FUNNEL[2:]) | _STAGED | {"FAILED", "RETRY_SCHEDULED", "ROLLED_BACK"},
    "VERIFYING": set(FUNNEL[3:]) | _STAGED | {"ROLLED_BACK"},
    "INSTALLING": set(FUNNEL[4:]) | {"ROLLED_BACK"},
    "SUCCEEDED": {"SUCCEEDED"},
}
# The columns of Campaign.summary(), the one summary the CLI prints too.
SUMMARY_COLUMNS = [
    "campaign_id", "name", "state", "release", "kind", "total", "succeeded", "failed", "deferred",
    "in_flight", "executed", "progress", "success_rate", "wave", "current_wave", "waves", "created_at",
    "created_by", "state_reason", "active", "critical", "approved_by", "continuous", "enrolling",
    "joined_later", "staged", "awaiting_consent", "install_policy", "download_networks", "bytes_wifi",
    "bytes_cellular",
]  # fmt: skip
DEPLOYMENT_COLUMNS = [
    "vin", "state", "wave", "attempt", "model", "from_version", "reason", "error_code", "detail",
    "progress_pct", "notified_at", "updated_at", "finished_at", "staged_at", "install_at",
    "bytes_wifi", "bytes_cellular",
]  # fmt: skip


def campaign_summary(ports: CampaignPorts) -> pd.DataFrame:
    """Every campaign, newest first. The campaigns table is small (one item per campaign)."""
    df = pd.DataFrame([c.summary() for c in list_campaigns(ports)], columns=SUMMARY_COLUMNS)
    df["created_at"] = pd.to_datetime(df["created_at"], utc=True, errors="coerce", format="ISO8601")
    return df


def deployments_frame(ports: CampaignPorts, campaign_id: str, limit: int = 5000) -> pd.DataFrame:
    """The campaign's deployments as rows (first ``limit``)."""
    rows = [asdict(d) for d in list_deployments(campaign_id, ports, limit)]
    df = pd.DataFrame(rows, columns=DEPLOYMENT_COLUMNS)
    df["state"] = df["state"].map(str)
    return df


def wave_progress(campaign: Campaign) -> pd.DataFrame:
    """Per wave: size (joined vehicles included), succeeded, failed, joined later, whether it started."""
    counters, current = campaign.counters, campaign.current_wave
    rows = []
    for index, size in enumerate(campaign.sizes):
        ok = counters.wave_succeeded[index] if index < len(counters.wave_succeeded) else 0
        bad = counters.wave_failed[index] if index < len(counters.wave_failed) else 0
        rows.append(
            {
                "wave": index + 1,
                "size": size,
                "succeeded": ok,
                "failed": bad,
                "pending": max(size - ok - bad, 0),
                "joined": counters.joined_in(index),
                "status": "done" if index < current else ("current" if index == current else "waiting"),
            }
        )
    return pd.DataFrame(rows, columns=["wave", "size", "succeeded", "failed", "pending", "joined", "status"])


def delivery(campaign: Campaign) -> DeliveryTally | None:
    """Finished attempts by artifact (delta or full), fallbacks by reason, bytes downloaded and saved.

    None when the release carries no delta and no attempt has reported its delivery yet.
    """
    tally = delivery_tally(campaign.counters.delivery)
    if not campaign.release.deltas and not (tally.from_delta or tally.from_full):
        return None
    return tally


def fallback_reasons(tally: DeliveryTally) -> pd.DataFrame:
    rows = sorted(tally.fallbacks.items(), key=lambda item: -item[1])
    return pd.DataFrame(rows, columns=["reason", "attempts"])


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
    "cellular_budget": "cellular budget spent: waiting for Wi-Fi",
    "campaign": "campaign paused",
    "waiting": "waiting for an install slot",
}


def reason_group(reason: str) -> str:
    return _RULES.get(str(reason).split(" ", 1)[0], str(reason))


def reasons(deps: pd.DataFrame) -> pd.DataFrame:
    """Failure, deferral and install-waiting reasons with counts: ``kind, reason, deployments``.

    ``kind`` is ``failed``, ``deferred`` (not yet notified) or ``waiting to install`` (downloaded,
    waiting for the install rule, e.g. parked inside the maintenance window, or the driver's consent).
    """
    if deps.empty or "state" not in deps.columns:
        return pd.DataFrame(columns=["kind", "reason", "deployments"])
    deps = deps.assign(
        **{c: deps.get(c, pd.Series(None, index=deps.index)) for c in ("error_code", "reason")}
    )
    failed = {"FAILED", "RETRY_SCHEDULED", "TIMED_OUT", "REJECTED", "ROLLED_BACK"}
    waiting = {"AWAITING_INSTALL", "AWAITING_CONSENT"}
    consent = deps["state"].eq("AWAITING_CONSENT") & deps["reason"].isna()
    deps = deps.assign(reason=deps["reason"].astype(object).mask(consent, "the driver's consent"))
    df = deps.assign(
        kind=deps["state"].map(
            lambda s: (
                "deferred"
                if s == "DEFERRED"
                else "failed"
                if s in failed
                else "waiting to install"
                if s in waiting
                else None
            )
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


def gate_comparison(gate: GateStatus | None) -> pd.DataFrame:
    """The health gate's canary vs control per signal: one row per (signal, group), chart-safe labels."""
    columns = ["signal", "group", "value", "unit", "n", "verdict", "p_value"]
    if gate is None:
        return pd.DataFrame(columns=columns)
    rows = []
    for m in gate.metrics:
        info = SIGNALS[m.signal]
        groups = (("canary", m.canary_mean, m.canary_n), ("control", m.control_mean, m.control_n))
        for group, value, n in groups:
            rows.append(
                {
                    "signal": chart_text(f"{info.label} ({info.unit})"),
                    "group": group,
                    "value": value,
                    "unit": chart_text(info.unit),
                    "n": n,
                    "verdict": m.verdict.value,
                    "p_value": m.p_value,
                }
            )
    return pd.DataFrame(rows, columns=columns)
