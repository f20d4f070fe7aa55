"""The campaign state machine and the pure wave-advance rule (hawkBit thresholds, IoT Jobs abort)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from fleetota_core.domain.campaign import (
    AbortCriteria,
    CampaignCounters,
    CampaignSpec,
    CampaignState,
    EventKind,
    Progress,
    TargetFilter,
    WaveSpec,
    advance,
    can_transition,
    wave_sizes,
)

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def spec(**overrides) -> CampaignSpec:
    base = {
        "name": "test",
        "release_version": "2.0.0",
        "waves": (
            WaveSpec(percent=10, success_threshold_pct=90, error_threshold_pct=20),
            WaveSpec(percent=30, success_threshold_pct=90, error_threshold_pct=20),
            WaveSpec(percent=60),
        ),
        "abort": AbortCriteria(failure_pct=50, min_executed=10),
    }
    return CampaignSpec(**{**base, **overrides})


def running(wave: int, sizes, states=None, ok=(0, 0, 0), failed=(0, 0, 0), ack=0) -> Progress:
    counters = CampaignCounters(states=states or {}, wave_succeeded=list(ok), wave_failed=list(failed))
    return Progress(CampaignState.RUNNING, wave, tuple(sizes), counters, ack)


def test_only_listed_campaign_transitions_are_allowed():
    assert can_transition(CampaignState.RUNNING, CampaignState.PAUSED)
    assert can_transition(CampaignState.PAUSED, CampaignState.RUNNING)
    assert not can_transition(CampaignState.ABORTED, CampaignState.RUNNING)
    assert not can_transition(CampaignState.DRAFT, CampaignState.RUNNING)
    assert not can_transition(CampaignState.CANCELLED, CampaignState.SCHEDULED)


def test_wave_sizes_split_percentages_and_give_the_remainder_to_the_last_wave():
    assert wave_sizes(200, spec().waves) == [20, 60, 120]
    assert wave_sizes(7, (WaveSpec(size=5), WaveSpec(size=5))) == [5, 2]
    assert wave_sizes(0, spec().waves) == [0, 0, 0]


def test_a_wave_needs_exactly_one_of_percent_or_size():
    with pytest.raises(ValidationError):
        WaveSpec(percent=10, size=5)
    with pytest.raises(ValidationError):
        WaveSpec()


def test_spec_rejects_a_non_semver_release_and_unknown_fields():
    with pytest.raises(ValidationError):
        CampaignSpec(name="x", release_version="2.0")
    with pytest.raises(ValidationError):
        CampaignSpec.model_validate({"name": "x", "release_version": "2.0.0", "wavez": []})


def test_a_scheduled_campaign_starts_only_when_its_start_time_has_come():
    later = spec(start_at=NOW + timedelta(hours=1))
    progress = Progress(CampaignState.SCHEDULED, 0, (20, 60, 120), CampaignCounters())
    assert advance(progress, later, NOW).state is CampaignState.SCHEDULED
    started = advance(progress, later, NOW + timedelta(hours=2))
    assert started.state is CampaignState.RUNNING
    assert started.events[0].kind is EventKind.STARTED


def test_the_error_threshold_is_checked_before_the_success_threshold():
    # Given wave 1 where 18/20 succeeded (90 % success) but 5 also failed (25 % > 20 % error)
    progress = running(0, (20, 60, 120), {"SUCCEEDED": 18, "FAILED": 5}, ok=(18, 0, 0), failed=(5, 0, 0))
    result = advance(progress, spec(), NOW)
    assert result.state is CampaignState.PAUSED
    assert result.events[0].kind is EventKind.AUTO_PAUSED
    assert "wave 1" in result.reason and "error threshold 20%" in result.reason


def test_reaching_the_success_threshold_opens_the_next_wave():
    progress = running(0, (20, 60, 120), {"SUCCEEDED": 18}, ok=(18, 0, 0))
    result = advance(progress, spec(), NOW)
    assert (result.state, result.current_wave) == (CampaignState.RUNNING, 1)
    assert result.events[0].kind is EventKind.WAVE_STARTED


def test_below_the_success_threshold_the_wave_keeps_running():
    progress = running(0, (20, 60, 120), {"SUCCEEDED": 10, "NOTIFIED": 10}, ok=(10, 0, 0))
    assert advance(progress, spec(), NOW).state is CampaignState.RUNNING
    assert advance(progress, spec(), NOW).current_wave == 0


def test_a_finished_wave_below_its_success_threshold_pauses_for_an_operator():
    states = {"SUCCEEDED": 17, "FAILED": 3}
    progress = running(0, (20, 60, 120), states, ok=(17, 0, 0), failed=(3, 0, 0))
    two_waves = spec(waves=(WaveSpec(size=20, error_threshold_pct=50), WaveSpec(percent=100)))
    result = advance(progress, two_waves, NOW)
    assert result.state is CampaignState.PAUSED
    assert "85.0% success < 90% threshold" in result.reason


def test_failures_an_operator_resumed_past_do_not_pause_the_wave_again():
    progress = running(0, (20, 60, 120), {"FAILED": 5}, failed=(5, 0, 0), ack=5)
    assert advance(progress, spec(), NOW).state is CampaignState.RUNNING


def test_abort_criteria_need_the_minimum_number_executed():
    few = running(0, (200,), {"FAILED": 6, "SUCCEEDED": 3}, ok=(3,), failed=(6,))
    lenient = spec(waves=(WaveSpec(percent=100, error_threshold_pct=100),))
    assert advance(few, lenient, NOW).state is CampaignState.RUNNING
    enough = running(0, (200,), {"FAILED": 6, "SUCCEEDED": 4}, ok=(4,), failed=(6,))
    result = advance(enough, lenient, NOW)
    assert result.state is CampaignState.ABORTED
    assert result.events[0].kind is EventKind.AUTO_ABORTED
    assert "60.0% >= 50%" in result.reason


def test_the_last_wave_completes_when_every_deployment_has_finished():
    states = {"SUCCEEDED": 195, "FAILED": 3, "CANCELLED": 2}
    done = running(2, (20, 60, 120), states, ok=(20, 60, 115), failed=(0, 0, 3))
    result = advance(done, spec(), NOW)
    assert result.state is CampaignState.COMPLETED
    unfinished = running(2, (20, 60, 120), {"SUCCEEDED": 190, "DEFERRED": 10}, ok=(20, 60, 110))
    assert advance(unfinished, spec(), NOW).state is CampaignState.RUNNING


def test_paused_and_finished_campaigns_do_not_advance():
    counters = CampaignCounters(states={"SUCCEEDED": 20}, wave_succeeded=[20, 0, 0], wave_failed=[0, 0, 0])
    for state in (CampaignState.PAUSED, CampaignState.ABORTED, CampaignState.COMPLETED):
        assert advance(Progress(state, 0, (20, 60, 120), counters), spec(), NOW).state is state


def test_target_filter_requires_every_non_empty_field_to_match():
    target = TargetFilter(models=("Model 3",), regions=("us-west",))
    assert target.matches("V", "Model 3", "B", "us-west", "1.0.0")
    assert not target.matches("V", "Model Y", "B", "us-west", "1.0.0")
    assert not target.matches("V", "Model 3", "B", "eu-west", "1.0.0")
    assert TargetFilter(vins=("A",)).matches("A", "m", "h", "r", "1.0.0")
    assert not TargetFilter(vins=("A",)).matches("B", "m", "h", "r", "1.0.0")


def test_counters_compute_success_and_failure_rates_over_executed_deployments():
    counters = CampaignCounters(states={"SUCCEEDED": 9, "REJECTED": 1, "NOTIFIED": 5})
    assert counters.executed == 10
    assert counters.success_rate() == 90.0
    assert counters.failure_rate() == 10.0
    assert counters.in_flight == 5
    assert CampaignCounters().success_rate() is None
