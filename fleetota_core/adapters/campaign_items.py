"""The one codec of the campaigns and deployments tables: items <-> domain types, counters, buckets.

No other module knows these attribute names. Campaign item: the spec and release as JSON, the state,
``wave_sizes``, a ``version`` for optimistic locking, and the counters (one per deployment state,
``in_flight``, and per wave: succeeded, failed, waiting, roster cursor). Deployment item: one per
(campaign, VIN), timestamps as fixed-width UTC strings (string order is time order), and
``campaign_status``, the ``by_status`` index key that buckets it for the operator actions.
"""

from __future__ import annotations

import functools
import json
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from fleetota_core.adapters.dynamo_items import from_item, sortable_ts, to_attr, to_item
from fleetota_core.domain.campaign import UPDATABLE_FIELDS, Campaign, CampaignCounters, CampaignSpec
from fleetota_core.domain.deployment import (
    BYTES_CELLULAR,
    BYTES_WIFI,
    CELLULAR_RESERVED,
    IN_FLIGHT,
    MUTABLE_FIELDS,
    STAGED,
    WAITING,
    CounterKey,
    Deployment,
    DeploymentState,
    deployment_id,
    enrolment_deltas,
    wave_joined,
    wave_tallies,
)
from fleetota_core.domain.firmware import FirmwareRelease
from fleetota_core.domain.health_gate import GateStatus

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping

    from fleetota_core.domain.creation import NewDeployments

S = DeploymentState
_TS_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"
_TIME_FIELDS = frozenset(
    {
        "next_action_at",
        "notified_at",
        "created_at",
        "updated_at",
        "deferred_at",
        "finished_at",
        "joined_at",
        "staged_at",
        "install_at",
    }
)
_WAVE_SUFFIX = {"wave_ok": "ok", "wave_fail": "fail", "wave_wait": "wait", "wave_joined": "joined"}
WATERMARK_ATTR = "enrol_watermark"  # how far a continuous campaign's enrolment read the change feed
_DELIVERY_PREFIX = "d_"


# Counters ---------------------------------------------------------------------------------------


def counter_attr(key: CounterKey) -> str:
    """The campaign item attribute that holds counter ``key``."""
    if key.kind == "state":
        return f"n_{key.state}"
    if key.kind in ("in_flight", "bytes_wifi", "bytes_cellular", "cellular_reserved"):
        return key.kind
    if key.kind == "delivery":
        return f"{_DELIVERY_PREFIX}{key.name}"
    return f"w{key.wave}_{_WAVE_SUFFIX[key.kind]}"


def counter_attrs(deltas: Mapping[CounterKey, int]) -> dict[str, int]:
    return {counter_attr(k): v for k, v in deltas.items()}


def cursor_attr(wave: int) -> str:
    return f"w{wave}_next"


def _counters(item: dict[str, Any], waves: int) -> CampaignCounters:
    def get(key: CounterKey, default: int = 0) -> int:
        return int(item.get(counter_attr(key), default))

    tallies = [wave_tallies(w) for w in range(waves)]
    return CampaignCounters(
        states={s.value: get(CounterKey("state", state=s)) for s in S},
        wave_succeeded=[get(ok) for ok, _, _ in tallies],
        wave_failed=[get(fail) for _, fail, _ in tallies],
        # Unknown waiting counts (older items) read as 1: there may be work.
        wave_waiting=[get(wait, 1) for _, _, wait in tallies],
        wave_joined=[get(wave_joined(w)) for w in range(waves)],
        delivery={
            k.removeprefix(_DELIVERY_PREFIX): int(v)
            for k, v in item.items()
            if k.startswith(_DELIVERY_PREFIX)
        },
        bytes_wifi=get(BYTES_WIFI),
        bytes_cellular=get(BYTES_CELLULAR),
        cellular_reserved=get(CELLULAR_RESERVED),
    )


# Campaigns --------------------------------------------------------------------------------------


def spec_json(spec: CampaignSpec) -> str:
    return json.dumps(spec.model_dump(mode="json"), sort_keys=True)


def campaign_to_item(campaign: Campaign) -> dict[str, Any]:
    """A new campaign's item, counters included."""
    c = campaign.counters
    item: dict[str, Any] = {
        "campaign_id": campaign.campaign_id,
        "name": campaign.spec.name,
        "spec": spec_json(campaign.spec),
        "release": campaign.release.model_dump_json(),
        "state": campaign.state.value,
        "state_reason": campaign.state_reason,
        "current_wave": campaign.current_wave,
        "wave_sizes": list(campaign.wave_sizes),
        "acknowledged_failures": campaign.acknowledged_failures,
        "version": campaign.version,
        "created_at": campaign.created_at.isoformat(),
        "created_by": campaign.created_by,
        "updated_at": campaign.updated_at.isoformat(),
        "in_flight": c.in_flight,
    }
    if campaign.approved_by is not None:
        item["approved_by"] = campaign.approved_by
    if campaign.enrolment_watermark:
        item[WATERMARK_ATTR] = campaign.enrolment_watermark
    if campaign.gate is not None:
        item["gate"] = campaign.gate.model_dump_json()
    item.update({counter_attr(CounterKey("state", state=S(s))): n for s, n in c.states.items() if n})
    for wave in range(len(campaign.wave_sizes)):
        ok, fail, wait = wave_tallies(wave)
        item[counter_attr(ok)] = c.wave_succeeded[wave] if wave < len(c.wave_succeeded) else 0
        item[counter_attr(fail)] = c.wave_failed[wave] if wave < len(c.wave_failed) else 0
        item[counter_attr(wait)] = c.wave_waiting[wave] if wave < len(c.wave_waiting) else 0
        item[counter_attr(wave_joined(wave))] = c.joined_in(wave)
    return item


def campaign_from_item(item: dict[str, Any]) -> Campaign:
    waves = len(item["wave_sizes"])
    return Campaign(
        campaign_id=item["campaign_id"],
        spec=CampaignSpec.model_validate_json(item["spec"]),
        release=FirmwareRelease.model_validate_json(item["release"]),
        state=item["state"],
        state_reason=item.get("state_reason", ""),
        current_wave=int(item.get("current_wave", 0)),
        wave_sizes=tuple(int(n) for n in item["wave_sizes"]),
        counters=_counters(item, waves),
        acknowledged_failures=int(item.get("acknowledged_failures", 0)),
        version=int(item.get("version", 0)),
        created_at=item["created_at"],
        created_by=item["created_by"],
        updated_at=item.get("updated_at", item["created_at"]),
        approved_by=item.get("approved_by"),
        roster_cursors=tuple(int(item.get(cursor_attr(w), 0)) for w in range(waves)),
        enrolment_closed=bool(item.get("enrolment_closed", False)),
        enrolment_watermark=str(item.get(WATERMARK_ATTR, "")),
        gate=GateStatus.model_validate_json(item["gate"]) if item.get("gate") else None,
    )


def enrolment_update(wave: int, taking: tuple[str, ...]) -> dict[str, Any]:
    """The campaign item update of one vehicle joining ``wave``: its counters, only while the
    campaign's state is one of ``taking`` and its enrolment is not closed (UpdateItem arguments)."""
    deltas = counter_attrs(enrolment_deltas(wave))
    names = {f"#c{i}": name for i, name in enumerate(deltas)}
    values: dict[str, Any] = {f":c{i}": {"N": str(v)} for i, v in enumerate(deltas.values())}
    states = [f":st{i}" for i in range(len(taking))]
    values.update({p: {"S": state} for p, state in zip(states, taking, strict=True)})
    values[":closed"] = {"BOOL": True}
    return {
        "UpdateExpression": "ADD " + ", ".join(f"#c{i} :c{i}" for i in range(len(deltas))),
        "ConditionExpression": f"#state IN ({', '.join(states)}) AND "
        "(attribute_not_exists(#closed) OR #closed <> :closed)",
        "ExpressionAttributeNames": {**names, "#state": "state", "#closed": "enrolment_closed"},
        "ExpressionAttributeValues": values,
    }


def watermark_update(token: str) -> dict[str, Any]:
    """Move a campaign's enrolment watermark to ``token``, never back (UpdateItem arguments)."""
    return {
        "UpdateExpression": "SET #w = :w",
        "ConditionExpression": "attribute_exists(campaign_id) AND (attribute_not_exists(#w) OR #w < :w)",
        "ExpressionAttributeNames": {"#w": WATERMARK_ATTR},
        "ExpressionAttributeValues": {":w": {"S": token}},
    }


def campaign_changes(changes: Mapping[str, object]) -> dict[str, Any]:
    """The attributes for an update of ``changes`` (Campaign field names)."""
    unknown = set(changes) - UPDATABLE_FIELDS
    if unknown:
        raise ValueError(f"a campaign update cannot set {', '.join(sorted(unknown))}")
    return {k: _change_value(k, v) for k, v in changes.items()}


def _change_value(name: str, value: object) -> object:
    if isinstance(value, datetime):
        return value.isoformat()
    if name == "state":
        return str(value)
    if isinstance(value, GateStatus):
        return value.model_dump_json()  # the gate's figures as one JSON string, like the spec
    return value


# Deployments ------------------------------------------------------------------------------------


def bucket(campaign_id: str, state: DeploymentState, wave: int) -> str:
    """The ``by_status`` key: waiting per wave, in flight, failed, succeeded, or closed."""
    if state in WAITING:
        return f"{campaign_id}#WAIT#{wave:03d}"
    if state in IN_FLIGHT:
        return f"{campaign_id}#ACTIVE"
    if state in STAGED:
        return f"{campaign_id}#STAGED"
    if state in (S.FAILED, S.TIMED_OUT):
        return f"{campaign_id}#FAILED"
    if state is S.SUCCEEDED:
        return f"{campaign_id}#SUCCEEDED"
    return f"{campaign_id}#CLOSED"


@functools.lru_cache(maxsize=1024)
def ts_attr(value: datetime) -> str:
    # Cached: a campaign's deployments share their created and next-action times.
    return sortable_ts(value)


def parse_ts(value: str) -> datetime:
    return datetime.strptime(value, _TS_FORMAT).replace(tzinfo=UTC)


def field_attrs(values: Mapping[str, object]) -> dict[str, Any]:
    """Deployment fields as attributes (times as sortable strings, states as names)."""
    unknown = set(values) - MUTABLE_FIELDS
    if unknown:
        raise ValueError(f"not a deployment field: {', '.join(sorted(unknown))}")
    return {k: ts_attr(v) if isinstance(v, datetime) else v for k, v in values.items()}


def deployment_to_item(deployment: Deployment) -> dict[str, Any]:
    values = {k: getattr(deployment, k) for k in MUTABLE_FIELDS if getattr(deployment, k) is not None}
    for flag in ("notice_sent", "cellular_granted"):
        if not getattr(deployment, flag):
            values.pop(flag, None)
    return to_item(
        {
            **field_attrs(values),
            "campaign_id": deployment.campaign_id,
            "vin": deployment.vin,
            "deployment_id": deployment.deployment_id,
            "wave": deployment.wave,
            "state": deployment.state.value,
            "version": deployment.version,
            "campaign_status": bucket(deployment.campaign_id, deployment.state, deployment.wave),
        }
    )


_BASES_LIMIT = 4096


def new_deployment_items(new: NewDeployments) -> Iterator[dict[str, Any]]:
    """``deployment_to_item`` of each of ``new.deployments()``: the same items, attribute order too,
    from the campaign's first item, setting only the vehicle's own attributes per item.

    A 1,000,000-vehicle campaign built a ``Deployment`` and encoded its fifteen attributes a million
    times, half of its creation. Attribute values are shared between items (requests only read them).
    """
    # A fleet's few (wave, model, revision, version): each one's item, all but the VIN's attributes.
    bases: dict[tuple[Any, ...], dict[str, Any]] = {}
    template: dict[str, Any] | None = None
    campaign_id = new.campaign_id
    for vehicle, wave in zip(new.vehicles, new.waves, strict=True):
        if template is None or None in vehicle:
            # The first one, and one with a missing value (its item leaves it out), encoded as ever.
            item = deployment_to_item(new.deployment(vehicle, wave))
            if None not in vehicle:
                template = item
            yield item
            continue
        vin, model, hw_rev, _, version = vehicle
        base = bases.get(key := (wave, model, hw_rev, version))
        if base is None:
            if len(bases) >= _BASES_LIMIT:
                bases.clear()  # bounded, whatever versions a fleet reports
            # Keys the template has keep their places: the attribute order is deployment_to_item's.
            base = bases[key] = {
                **template,
                "wave": to_attr(wave),
                "campaign_status": to_attr(bucket(campaign_id, S.PENDING, wave)),
                "model": to_attr(model),
                "hw_rev": to_attr(hw_rev),
                "from_version": to_attr(version),
            }
        item = base.copy()
        item["vin"] = {"S": vin} if type(vin) is str else to_attr(vin)  # to_attr's, without the call
        item["deployment_id"] = {"S": deployment_id(campaign_id, vin)}
        yield item


def deployment_from_item(raw: dict[str, Any]) -> Deployment:
    item = from_item(raw) or {}
    times = {k: parse_ts(item[k]) for k in _TIME_FIELDS if item.get(k)}
    return Deployment(
        campaign_id=item["campaign_id"],
        vin=item["vin"],
        wave=int(item.get("wave", 0)),
        state=S(item["state"]),
        version=int(item.get("version", 0)),
        attempt=int(item.get("attempt", 0)),
        model=item.get("model"),
        hw_rev=item.get("hw_rev"),
        from_version=item.get("from_version"),
        reason=item.get("reason"),
        error_code=item.get("error_code"),
        detail=item.get("detail"),
        progress_pct=item.get("progress_pct"),
        notice_sent=bool(item.get("notice_sent", False)),
        cellular_granted=bool(item.get("cellular_granted", False)),
        bytes_wifi=None if item.get("bytes_wifi") is None else int(item["bytes_wifi"]),
        bytes_cellular=None if item.get("bytes_cellular") is None else int(item["bytes_cellular"]),
        **times,
    )


def deployment_key(campaign_id: str, vin: str) -> dict[str, Any]:
    return {"campaign_id": {"S": campaign_id}, "vin": {"S": vin}}
