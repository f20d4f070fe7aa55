"""The deployment state machine, vehicle reports and the retry policy."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest

from fleetota_core.domain.deployment import (
    DeploymentState,
    IllegalTransition,
    RetryPolicy,
    apply_report,
    check_transition,
    decide_retry,
)
from fleetota_core.domain.telemetry import OtaReport, OtaStatus

S = DeploymentState
NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def report(status: OtaStatus, **kw) -> OtaReport:
    return OtaReport(campaign_id="c1", deployment_id="c1.V", status=status, target_version="2.0.0", **kw)


def test_the_main_path_is_allowed_step_by_step():
    path = [S.PENDING, S.ELIGIBLE, S.NOTIFIED, S.DOWNLOADING, S.VERIFYING, S.INSTALLING, S.SUCCEEDED]
    for current, target in itertools.pairwise(path):
        assert check_transition(current, target) is target


def test_a_vehicle_cannot_jump_from_pending_straight_to_installing():
    with pytest.raises(IllegalTransition, match="PENDING to INSTALLING"):
        check_transition(S.PENDING, S.INSTALLING)


def test_a_report_may_skip_forward_when_telemetry_lost_a_step():
    assert apply_report(S.NOTIFIED, report(OtaStatus.INSTALLING)) is S.INSTALLING


def test_a_report_that_goes_backwards_is_an_illegal_transition_not_a_change():
    result = apply_report(S.INSTALLING, report(OtaStatus.DOWNLOADING))
    assert isinstance(result, IllegalTransition)
    assert isinstance(apply_report(S.SUCCEEDED, report(OtaStatus.FAILED)), IllegalTransition)
    assert isinstance(apply_report(S.PENDING, report(OtaStatus.SUCCEEDED)), IllegalTransition)


def test_received_and_repeated_download_progress_change_nothing():
    assert apply_report(S.NOTIFIED, report(OtaStatus.RECEIVED)) is None
    assert apply_report(S.DOWNLOADING, report(OtaStatus.DOWNLOADING, progress_pct=50)) is None


def test_a_vehicle_may_reject_a_job_before_installing_but_not_during():
    assert apply_report(S.NOTIFIED, report(OtaStatus.REJECTED)) is S.REJECTED
    assert isinstance(apply_report(S.INSTALLING, report(OtaStatus.REJECTED)), IllegalTransition)


def test_backoff_grows_exponentially_and_is_capped():
    policy = RetryPolicy(backoff_base_s=10, backoff_factor=3, backoff_max_s=60)
    assert [policy.backoff(n).total_seconds() for n in (1, 2, 3)] == [10, 30, 60]


def test_transient_failures_are_retried_until_the_attempt_limit():
    policy = RetryPolicy(max_attempts=3, backoff_base_s=60)
    first = decide_retry(policy, S.FAILED, "INSTALL_TRANSIENT", 1, NOW)
    assert first.retry and first.at == NOW + timedelta(seconds=60)
    assert decide_retry(policy, S.FAILED, "INSTALL_TRANSIENT", 2, NOW).at == NOW + timedelta(seconds=120)
    assert not decide_retry(policy, S.FAILED, "INSTALL_TRANSIENT", 3, NOW).retry


def test_permanent_and_unknown_failures_are_never_retried():
    policy = RetryPolicy()
    assert not decide_retry(policy, S.FAILED, "INSTALL_FAILED_PERMANENT", 1, NOW).retry
    assert not decide_retry(policy, S.FAILED, None, 1, NOW).retry
    assert not decide_retry(policy, S.REJECTED, "BAD_SIGNATURE", 1, NOW).retry


def test_timeouts_are_retried_like_transient_failures():
    assert decide_retry(RetryPolicy(), S.TIMED_OUT, None, 1, NOW).retry
