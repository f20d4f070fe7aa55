"""How a deployment moves: the campaign's counters, the schedule hint and the conditional write.

Three single-item writes, not a transaction: the campaign item is a hot counter that concurrent
ticks and telemetry batches update (transactions on it would conflict). Their order keeps what every
reader sees sound:

- **Increments follow the claim**, so a count never runs ahead of the deployments (a loser's
  success never counts). The one exception is the in-flight reservation: a claim into flight first
  adds its increments with the ``max_in_flight`` cap as the condition, and takes them back if the
  claim loses.
- **Decrements never go below zero.** Each is conditional on the counter holding at least that much.
  A decrement can only come from a writer that saw the deployment in the old state, after the claim
  that put it there; if that claim's increment has not landed yet, the decrement waits for it.
- **Hints go first, except when a deployment leaves flight.** A hint written before the claim
  survives a crash between the two. But a tick that reads a re-check or retry hint while the
  deployment is still in flight re-files it under the in-flight lane, so that hint is written after
  the claim; a crash in between is caught by the in-flight deadline hint every notified deployment has.
"""

from __future__ import annotations

import logging
from collections import Counter
from typing import TYPE_CHECKING

from fleetota_core.domain.deployment import (
    IN_FLIGHT_COUNT,
    Lane,
    Outcome,
    counter_deltas,
    lane_of,
)

if TYPE_CHECKING:
    from collections.abc import Mapping

    from fleetota_core.domain.deployment import CounterKey, Transition
    from fleetota_core.services.campaigns.ports import CampaignPorts

logger = logging.getLogger(__name__)
SETTLE_ATTEMPTS = 7  # waits of 10 ms doubling: about 1.3 s for a racing writer's increment to land


class Decrements:
    """Counter decrements held back until the end of a page: one write for a page of claims."""

    def __init__(self) -> None:
        self.by_campaign: dict[str, Counter[CounterKey]] = {}

    def add(self, campaign_id: str, deltas: Mapping[CounterKey, int]) -> None:
        self.by_campaign.setdefault(campaign_id, Counter()).update(deltas)

    def flush(self, ports: CampaignPorts) -> None:
        pending, self.by_campaign = self.by_campaign, {}
        for campaign_id, deltas in pending.items():
            settle(ports, campaign_id, {k: v for k, v in deltas.items() if v})


def transition(ports: CampaignPorts, change: Transition, later: Decrements | None = None) -> Outcome:
    """Apply ``change`` if the deployment is as expected, with its counters and its hint.

    ``later`` collects the decrements of in-flight claims for one write at the end of a page.
    """
    deltas = counter_deltas(change.old_state, change.new_state, change.wave)
    ups = {k: v for k, v in deltas.items() if v > 0}
    reserve = change.max_in_flight is not None and deltas.get(IN_FLIGHT_COUNT, 0) > 0
    if reserve and not ports.campaigns.add_counters(
        change.campaign_id, ups, in_flight_below=change.max_in_flight
    ):
        return Outcome.AT_CAPACITY
    lane, at = lane_of(change.new_state), change.next_action_at
    hint = None if change.hinted or at is None or lane is None else (lane, at)
    leaves_flight = lane_of(change.old_state) is Lane.ACTIVE and lane is Lane.WAIT
    if hint is not None and not leaves_flight:
        ports.schedule.hint(change.campaign_id, hint[0], hint[1], change.vin)
    if not ports.deployments.apply(change):
        if reserve:
            ports.campaigns.add_counters(change.campaign_id, {k: -v for k, v in ups.items()})
        return Outcome.LOST_RACE
    if hint is not None and leaves_flight:
        ports.schedule.hint(change.campaign_id, hint[0], hint[1], change.vin)
    rest = {k: v for k, v in deltas.items() if v < 0} if reserve else deltas
    if later is not None and reserve:
        later.add(change.campaign_id, rest)
    else:
        settle(ports, change.campaign_id, rest)
    return Outcome.APPLIED


def settle(ports: CampaignPorts, campaign_id: str, deltas: Mapping[CounterKey, int]) -> bool:
    """Add ``deltas`` once no decrement would take a counter below zero; False if that never came.

    Giving up leaves the counters over by the decrements (``recount`` repairs it): only a writer
    that died between its claim and its counters causes that.
    """
    if not deltas:
        return True
    for attempt in range(SETTLE_ATTEMPTS):
        if ports.campaigns.add_counters(campaign_id, deltas, never_negative=True):
            return True
        ports.clock.sleep(0.01 * 2**attempt)
    logger.warning(
        "campaign %s: decrements %s found no matching increment; recount repairs", campaign_id, deltas
    )
    ups = {k: v for k, v in deltas.items() if v > 0}
    if ups:
        ports.campaigns.add_counters(campaign_id, ups)
    return False
