"""Schedule expressions the local scheduler accepts."""

from __future__ import annotations

import pytest

from fleetota_core.errors import ConfigurationError
from fleetota_core.local.schedule import local_interval, schedule_interval_seconds


@pytest.mark.parametrize(
    ("expression", "seconds"),
    [("rate(1 minute)", 60), ("rate(5 minutes)", 300), ("rate(1 hour)", 3600), ("rate(2 days)", 172800)],
)
def test_rate_expressions_give_their_interval(expression: str, seconds: int):
    assert schedule_interval_seconds(expression) == seconds


@pytest.mark.parametrize(
    "expression", ["rate(1 minutes)", "rate(5 minute)", "rate(0 minutes)", "every minute"]
)
def test_malformed_rates_are_rejected(expression: str):
    with pytest.raises(ConfigurationError):
        schedule_interval_seconds(expression)


def test_cron_is_rejected_with_a_clear_message():
    with pytest.raises(ConfigurationError, match="rate"):
        schedule_interval_seconds("cron(0 12 * * ? *)")


@pytest.mark.parametrize(
    ("template_s", "local_s", "fired_s"),
    [(60, 10, 10), (60, 0, 60), (60, 120, 60), (3600, 15, 15)],
)
def test_the_local_scheduler_ticks_at_least_as_often_as_its_local_cap(template_s, local_s, fired_s):
    assert local_interval(template_s, local_s) == fired_s
