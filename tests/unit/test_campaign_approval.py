"""Four-eyes approval over fakes: critical or large campaigns wait for a second operator."""

from __future__ import annotations

import pytest
from campaign_fakes import FakeWorld
from campaign_world import deployments, spec, tick, world_with_campaign

from fleetota_core.domain.approval import ApprovalPolicy
from fleetota_core.domain.campaign import CampaignState
from fleetota_core.domain.deployment import DeploymentState
from fleetota_core.errors import ValidationError
from fleetota_core.services.campaigns.actions import abort_campaign, approve_campaign, reject_campaign

C = CampaignState
S = DeploymentState


def test_a_critical_campaign_waits_and_no_vehicle_hears_of_it_until_another_operator_approves() -> None:
    world, campaign = world_with_campaign(8, spec(critical=True))
    assert campaign.state is C.AWAITING_APPROVAL
    assert "marked critical" in campaign.state_reason

    assert tick(world, 60).notified == 0
    assert world.notifier.notices == []
    assert world.ports.campaign(campaign.campaign_id).state is C.AWAITING_APPROVAL

    approved = approve_campaign(campaign.campaign_id, "bob", "reviewed the release notes", world.ports)
    assert approved.state is C.SCHEDULED and approved.approved_by == "bob"
    assert tick(world, 10).notified == 8
    approval = [e for e in world.audit.events if e["action"] == "APPROVE"]
    assert approval[0]["operator"] == "bob"
    assert approval[0]["reason"] == "reviewed the release notes"
    assert approval[0]["detail"] == {"requested_by": "alice", "approved_by": "bob"}


@pytest.mark.parametrize("approver", ["alice", " Alice "])
def test_the_creator_cannot_approve_their_own_campaign(approver: str) -> None:
    world, campaign = world_with_campaign(4, spec(critical=True))
    with pytest.raises(ValidationError, match=r"four-eyes rule: .* a different operator must approve"):
        approve_campaign(campaign.campaign_id, approver, "looks fine", world.ports)
    assert world.ports.campaign(campaign.campaign_id).state is C.AWAITING_APPROVAL


def test_an_approval_needs_a_reason() -> None:
    world, campaign = world_with_campaign(4, spec(critical=True))
    with pytest.raises(ValidationError, match="needs a reason"):
        approve_campaign(campaign.campaign_id, "bob", "  ", world.ports)


def test_a_campaign_above_the_vehicle_limit_waits_and_one_at_the_limit_does_not() -> None:
    at_limit = FakeWorld(approval=ApprovalPolicy(min_vehicles=5))
    _, small = world_with_campaign(5, spec(), at_limit)
    assert small.state is C.SCHEDULED

    above = FakeWorld(approval=ApprovalPolicy(min_vehicles=5))
    _, large = world_with_campaign(6, spec(), above)
    assert large.state is C.AWAITING_APPROVAL
    assert "6 vehicles is more than the approval limit of 5" in large.state_reason


def test_a_rejected_campaign_is_cancelled_with_its_deployments_and_both_operators_audited() -> None:
    world, campaign = world_with_campaign(4, spec(critical=True))
    rejected = reject_campaign(campaign.campaign_id, "bob", "wrong release", world.ports)
    assert rejected.state is C.CANCELLED
    assert {d.state for d in deployments(world, campaign)} == {S.CANCELLED}
    assert tick(world, 60).notified == 0
    event = next(e for e in world.audit.events if e["action"] == "REJECT")
    assert event["detail"] == {"requested_by": "alice", "rejected_by": "bob"}


def test_the_creator_may_withdraw_a_waiting_campaign() -> None:
    world, campaign = world_with_campaign(3, spec(critical=True))
    assert abort_campaign(campaign.campaign_id, "alice", "not needed", world.ports).state is C.CANCELLED


def test_the_tick_holds_a_scheduled_campaign_that_needs_approval_and_has_none() -> None:
    # Created where no limit applied (an old client); the update manager has the 5-vehicle limit.
    world, campaign = world_with_campaign(6, spec())
    assert campaign.state is C.SCHEDULED
    world.approval = ApprovalPolicy(min_vehicles=5)

    assert tick(world, 10).notified == 0
    held = world.ports.campaign(campaign.campaign_id)
    assert held.state is C.AWAITING_APPROVAL
    assert held.state_reason.startswith("held by the update manager")
    assert "APPROVAL_REQUIRED" in world.audit.actions(campaign.campaign_id)

    approve_campaign(campaign.campaign_id, "bob", "checked", world.ports)
    assert tick(world, 10).notified == 6  # approved once: the limit no longer holds it


def test_only_a_waiting_campaign_can_be_approved() -> None:
    world, campaign = world_with_campaign(3, spec())
    with pytest.raises(ValidationError, match="not awaiting approval"):
        approve_campaign(campaign.campaign_id, "bob", "ok", world.ports)
