"""Alarm state rules of the local evaluator, as CloudWatch applies them to simple-statistic alarms."""

from __future__ import annotations

from fleetota_core.local.alarms import alarm_state

LATENCY = {
    "AlarmName": "latency",
    "EvaluationPeriods": 3,
    "Threshold": 5000.0,
    "ComparisonOperator": "GreaterThanThreshold",
    "TreatMissingData": "notBreaching",
}


def test_all_periods_breaching_is_alarm():
    state, reason = alarm_state(LATENCY, [9000, 8000, 7000], "OK")
    assert state == "ALARM" and "5000" in reason


def test_one_breaching_period_of_three_is_ok_when_three_are_needed():
    assert alarm_state(LATENCY, [9000], "INSUFFICIENT_DATA")[0] == "OK"


def test_datapoints_to_alarm_lowers_how_many_periods_must_breach():
    assert alarm_state({**LATENCY, "DatapointsToAlarm": 1}, [9000, 10], "OK")[0] == "ALARM"


def test_a_value_equal_to_the_threshold_does_not_breach_greater_than():
    assert alarm_state({**LATENCY, "EvaluationPeriods": 1}, [5000], "OK")[0] == "OK"
    ge = {**LATENCY, "EvaluationPeriods": 1, "ComparisonOperator": "GreaterThanOrEqualToThreshold"}
    assert alarm_state(ge, [5000], "OK")[0] == "ALARM"


def test_less_than_alarms_breach_below_the_threshold():
    connectivity = {
        **LATENCY,
        "Threshold": 80.0,
        "ComparisonOperator": "LessThanThreshold",
        "EvaluationPeriods": 1,
    }
    assert alarm_state(connectivity, [70], "OK")[0] == "ALARM"
    assert alarm_state(connectivity, [95], "ALARM")[0] == "OK"


def test_no_data_follows_treat_missing_data():
    for treat, current, expected in [
        ("notBreaching", "ALARM", "OK"),
        ("breaching", "OK", "ALARM"),
        ("missing", "OK", "INSUFFICIENT_DATA"),
        ("ignore", "ALARM", "ALARM"),
    ]:
        assert alarm_state({**LATENCY, "TreatMissingData": treat}, [], current)[0] == expected, treat


def test_missing_periods_count_as_breaching_when_so_treated():
    assert alarm_state({**LATENCY, "TreatMissingData": "breaching"}, [9000], "OK")[0] == "ALARM"


def test_only_the_newest_evaluation_periods_count():
    assert alarm_state({**LATENCY, "EvaluationPeriods": 1}, [10, 9000, 9000], "ALARM")[0] == "OK"
