"""Every number in a campaign spec is bounded, so a spec that validates cannot overflow later.

Before these bounds, ``job_ttl_s: 99999999999999999999999999`` passed validation and every tick then
failed with OverflowError when it added the TTL to a datetime.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import pytest

from fleetota_core.domain.bounds import MAX_SAFE_INT
from fleetota_core.errors import ValidationError
from fleetota_core.services.campaigns.create import parse_spec

if TYPE_CHECKING:
    from fleetota_core.domain.campaign import CampaignSpec

HUGE = 99999999999999999999999999
DAY = 86_400


def spec_with(**fields: object) -> CampaignSpec:
    return parse_spec({"name": "bounds", "release_version": "2.0.0", **fields})


def refusal(**fields: object) -> str:
    with pytest.raises(ValidationError) as caught:
        spec_with(**fields)
    return str(caught.value)


@pytest.mark.parametrize(
    ("fields", "named", "bound"),
    [
        ({"job_ttl_s": HUGE}, "job_ttl_s", "2592000"),
        ({"soak_minutes": 7 * 24 * 60 + 1}, "soak_minutes", "10080"),
        ({"soak_minutes": 0.05}, "soak_minutes", "0.1"),
        ({"job_ttl_s": 30 * DAY + 1}, "job_ttl_s", "2592000"),
        ({"in_progress_timeout_s": 7 * DAY + 1}, "in_progress_timeout_s", "604800"),
        ({"defer_recheck_s": DAY + 1}, "defer_recheck_s", "86400"),
        ({"retry": {"backoff_base_s": 7 * DAY + 1}}, "retry.backoff_base_s", "604800"),
        ({"retry": {"backoff_max_s": HUGE}}, "retry.backoff_max_s", "604800"),
        ({"retry": {"backoff_factor": 11}}, "retry.backoff_factor", "10"),
        ({"retry": {"max_attempts": 21}}, "retry.max_attempts", "20"),
        ({"waves": [{"size": MAX_SAFE_INT + 1}]}, "waves.0.size", str(MAX_SAFE_INT)),
        ({"waves": [{"percent": 101}]}, "waves.0.percent", "100"),
        (
            {"waves": [{"percent": 50, "success_threshold_pct": 100.5}]},
            "waves.0.success_threshold_pct",
            "100",
        ),
        ({"waves": [{"percent": 50, "error_threshold_pct": -1}]}, "waves.0.error_threshold_pct", "0"),
        ({"abort": {"min_executed": HUGE}}, "abort.min_executed", str(MAX_SAFE_INT)),
        ({"abort": {"failure_pct": 100.1}}, "abort.failure_pct", "100"),
        ({"max_in_flight": HUGE}, "max_in_flight", "100000"),
        ({"eligibility": {"min_soc_pct": 101}}, "eligibility.min_soc_pct", "100"),
        ({"eligibility": {"offline_after": 8 * DAY}}, "eligibility.offline_after", "7 days"),
        ({"name": "n" * 121}, "name", "120"),
        ({"description": "d" * 2001}, "description", "2000"),
    ],
)
def test_a_value_past_its_bound_is_refused_naming_the_field_and_the_bound(fields, named, bound):
    message = refusal(**fields)
    assert message.startswith("invalid campaign spec: ")
    assert f"{named}: " in message and bound in message


@pytest.mark.parametrize(
    "fields",
    [
        {"retry": {"backoff_factor": float("inf")}},
        {"retry": {"backoff_base_s": float("nan")}},
        {"abort": {"failure_pct": float("nan")}},
        {"waves": [{"percent": float("inf")}]},
        {"eligibility": {"min_soc_pct": float("nan")}},
    ],
)
def test_infinity_and_nan_are_refused(fields):
    assert "Input should be a finite number" in refusal(**fields)


def test_every_bound_itself_is_accepted_and_the_tick_can_do_its_date_arithmetic():
    spec = spec_with(
        job_ttl_s=30 * DAY,
        in_progress_timeout_s=7 * DAY,
        defer_recheck_s=DAY,
        retry={"backoff_base_s": 7 * DAY, "backoff_max_s": 7 * DAY, "backoff_factor": 10, "max_attempts": 20},
        waves=[{"size": MAX_SAFE_INT}, {"percent": 100}],
        abort={"min_executed": MAX_SAFE_INT, "failure_pct": 100},
        eligibility={"offline_after": 7 * DAY},
        name="n" * 120,
        description="d" * 2000,
    )
    now = datetime(9000, 1, 1, tzinfo=UTC)
    assert now + timedelta(seconds=spec.job_ttl_s) > now
    assert now + timedelta(seconds=spec.in_progress_timeout_s) > now
    assert spec.retry.backoff(20) == timedelta(days=7)
