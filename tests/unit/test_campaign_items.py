"""The campaign and deployment item codec: the one place that knows the tables' attribute names."""

from __future__ import annotations

from datetime import UTC, datetime

from campaign_world import spec, world_with_campaign

from fleetota_core.adapters.campaign_items import (
    bucket,
    campaign_changes,
    campaign_from_item,
    campaign_to_item,
    counter_attr,
    deployment_from_item,
    deployment_to_item,
)
from fleetota_core.adapters.dynamo_items import from_item, to_item
from fleetota_core.domain.deployment import (
    IN_FLIGHT_COUNT,
    Deployment,
    DeploymentState,
    counter_deltas,
    state_count,
    wave_tallies,
)
from fleetota_core.domain.health_gate import GatePhase, GateStatus, GateVerdict, MetricResult, MetricVerdict
from fleetota_core.domain.vehicle_health import Signal

S = DeploymentState
AT = datetime(2026, 11, 30, 12, 0, 0, 123456, tzinfo=UTC)


def test_a_campaign_survives_the_round_trip_through_its_item_counters_and_all() -> None:
    _, campaign = world_with_campaign(7, spec())
    item = from_item(to_item(campaign_to_item(campaign))) or {}
    again = campaign_from_item(item)
    assert again == campaign.model_copy(update={"roster_cursors": (0,)})
    assert item[counter_attr(state_count(S.PENDING))] == 7


def test_the_health_gate_and_soak_survive_the_round_trip_and_an_update() -> None:
    _, campaign = world_with_campaign(7, spec(soak_minutes=45))
    gate = GateStatus(
        wave=0,
        phase=GatePhase.FAILED,
        soak_started_at=AT,
        soak_ends_at=AT,
        give_up_at=AT,
        canary_vehicles=3,
        control_vehicles=4,
        verdict=GateVerdict.MARGINAL,
        score=75.0,
        metrics=(
            MetricResult(
                signal=Signal.DTC, verdict=MetricVerdict.HIGH, canary_n=3, control_n=4, p_value=0.004
            ),
        ),
        evidence="canary DTC rate ...",
    )
    gated = campaign.model_copy(update={"gate": gate})
    item = from_item(to_item(campaign_to_item(gated))) or {}
    assert campaign_from_item(item) == gated.model_copy(update={"roster_cursors": (0,)})
    assert campaign_from_item(item).spec.soak_minutes == 45
    # An update stores the gate as the same JSON the item holds.
    assert campaign_changes({"gate": gate})["gate"] == item["gate"]


def test_a_deployment_survives_the_round_trip_with_its_times_to_the_microsecond() -> None:
    deployment = Deployment(
        campaign_id="c1",
        vin="5YJ3E1EA0P0000001",
        wave=2,
        state=S.NOTIFIED,
        version=3,
        attempt=1,
        notified_at=AT,
        next_action_at=AT,
        reason="battery 12% < 30%",
        progress_pct=12.5,
    )
    item = deployment_to_item(deployment)
    assert item["campaign_status"] == {"S": bucket("c1", S.NOTIFIED, 2)}
    assert deployment_from_item(item) == deployment


def test_counter_names_are_stable_because_existing_items_carry_them() -> None:
    ok, fail, wait = wave_tallies(1)
    names = [counter_attr(k) for k in (state_count(S.RETRY_SCHEDULED), IN_FLIGHT_COUNT, ok, fail, wait)]
    assert names == ["n_RETRY_SCHEDULED", "in_flight", "w1_ok", "w1_fail", "w1_wait"]


def test_a_transition_moves_one_state_count_and_the_waves_tallies() -> None:
    deltas = counter_deltas(S.INSTALLING, S.RETRY_SCHEDULED, 1)
    ok, fail, wait = wave_tallies(1)
    assert deltas == {
        state_count(S.INSTALLING): -1,
        state_count(S.RETRY_SCHEDULED): 1,
        IN_FLIGHT_COUNT: -1,
        wait: 1,
    }
    assert ok not in deltas and fail not in deltas
