"""Evaluates the template's CloudWatch alarms, which moto stores but never evaluates.

The state follows CloudWatch's rules for simple-statistic alarms: the last ``EvaluationPeriods``
periods, ``DatapointsToAlarm`` of them breaching, and ``TreatMissingData`` when periods are empty.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from fleetota_core.adapters.alerts import Alert, publish_alert
from fleetota_core.settings import LOCAL_ACCOUNT_ID

if TYPE_CHECKING:
    from collections.abc import Sequence

    from fleetota_core.adapters.clients import ClientFactory

_COMPARE = {
    "GreaterThanThreshold": operator.gt,
    "GreaterThanOrEqualToThreshold": operator.ge,
    "LessThanThreshold": operator.lt,
    "LessThanOrEqualToThreshold": operator.le,
}


@dataclass(frozen=True)
class AlarmTransition:
    alarm_name: str
    old_state: str
    new_state: str
    reason: str
    notified: list[str]


def alarm_state(alarm: dict[str, Any], values: Sequence[float], current_state: str) -> tuple[str, str]:
    """The state and reason for an alarm given the newest-first datapoints of its window.

    ``values`` holds at most ``EvaluationPeriods`` values, one per period that had data.
    """
    periods = int(alarm["EvaluationPeriods"])
    needed = int(alarm.get("DatapointsToAlarm", periods))
    threshold = float(alarm["Threshold"])
    compare = _COMPARE[alarm["ComparisonOperator"]]
    treat_missing = alarm.get("TreatMissingData", "missing")
    present = list(values)[:periods]
    breaching = sum(1 for v in present if compare(v, threshold))
    missing = periods - len(present)
    if not present:
        if treat_missing == "breaching":
            return "ALARM", f"no datapoints for {periods} period(s), treated as breaching"
        if treat_missing == "notBreaching":
            return "OK", f"no datapoints for {periods} period(s), treated as not breaching"
        if treat_missing == "ignore":
            return current_state, "no datapoints; state kept (TreatMissingData=ignore)"
        return "INSUFFICIENT_DATA", f"no datapoints for {periods} period(s)"
    if treat_missing == "breaching":
        breaching += missing
    shown = ", ".join(f"{v:g}" for v in present)
    relation = alarm["ComparisonOperator"].replace("Threshold", "").replace("Than", " than ").lower()
    if breaching >= needed:
        return "ALARM", (
            f"Threshold Crossed: {breaching} of the last {periods} datapoint(s) [{shown}] were {relation} "
            f"the threshold ({threshold:g})."
        )
    return "OK", (
        f"Threshold Crossed: {breaching} of the last {periods} datapoint(s) [{shown}] were {relation} "
        f"the threshold ({threshold:g}); {needed} needed to alarm."
    )


def alarm_message(
    alarm: dict[str, Any], old: str, new: str, reason: str, region: str, at: datetime
) -> dict[str, Any]:
    """The JSON CloudWatch publishes to an alarm's SNS actions on a state change."""
    return {
        "AlarmName": alarm["AlarmName"],
        "AlarmDescription": alarm.get("AlarmDescription"),
        "AWSAccountId": LOCAL_ACCOUNT_ID,
        "AlarmConfigurationUpdatedTimestamp": at.isoformat(timespec="milliseconds"),
        "NewStateValue": new,
        "NewStateReason": reason,
        "StateChangeTime": at.isoformat(timespec="milliseconds"),
        "Region": region,
        "AlarmArn": f"arn:aws:cloudwatch:{region}:{LOCAL_ACCOUNT_ID}:alarm:{alarm['AlarmName']}",
        "OldStateValue": old,
        "Trigger": {
            "MetricName": alarm.get("MetricName"),
            "Namespace": alarm.get("Namespace"),
            "StatisticType": "Statistic",
            "Statistic": str(alarm.get("Statistic", "")).upper(),
            "Unit": alarm.get("Unit"),
            "Dimensions": [{"name": d["Name"], "value": d["Value"]} for d in alarm.get("Dimensions", [])],
            "Period": alarm.get("Period"),
            "EvaluationPeriods": alarm.get("EvaluationPeriods"),
            "ComparisonOperator": alarm.get("ComparisonOperator"),
            "Threshold": alarm.get("Threshold"),
            "TreatMissingData": alarm.get("TreatMissingData", "missing"),
        },
    }


class AlarmEvaluator:
    """Reads each alarm's metric, sets its state on change, and notifies its SNS actions."""

    def __init__(
        self,
        clients: ClientFactory,
        alarms: list[dict[str, Any]],
        region: str,
        ledger_table: str | None = None,
    ) -> None:
        self.clients = clients
        self.alarms = [a for a in alarms if "Metrics" not in a and "ExtendedStatistic" not in a]
        self.region = region
        self.ledger_table = ledger_table  # where sent alerts are recorded for the dashboard's feed

    def _values(self, alarm: dict[str, Any], now: datetime) -> list[float]:
        period = int(alarm["Period"])
        start = now - timedelta(seconds=period * int(alarm["EvaluationPeriods"]))
        stat = {
            "Metric": {
                "Namespace": alarm["Namespace"],
                "MetricName": alarm["MetricName"],
                "Dimensions": alarm.get("Dimensions", []),
            },
            "Period": period,
            "Stat": alarm["Statistic"],
        }
        result = self.clients.cloudwatch.get_metric_data(
            MetricDataQueries=[{"Id": "m", "MetricStat": stat, "ReturnData": True}],
            StartTime=start,
            EndTime=now + timedelta(seconds=1),
            ScanBy="TimestampDescending",
        )["MetricDataResults"][0]
        points = sorted(
            zip(result.get("Timestamps", []), result.get("Values", []), strict=False), reverse=True
        )
        return [value for _, value in points]

    def evaluate(self, now: datetime | None = None) -> list[AlarmTransition]:
        """Evaluate every alarm once; returns the alarms whose state changed."""
        now = now or datetime.now(UTC)
        names = [a["AlarmName"] for a in self.alarms]
        current = {
            a["AlarmName"]: a["StateValue"]
            for a in self.clients.cloudwatch.describe_alarms(AlarmNames=names).get("MetricAlarms", [])
        }
        transitions = []
        for alarm in self.alarms:
            old = current.get(alarm["AlarmName"])
            if old is None:
                continue  # not provisioned (e.g. removed by a reset in progress)
            new, reason = alarm_state(alarm, self._values(alarm, now), old)
            if new == old:
                continue
            self.clients.cloudwatch.set_alarm_state(
                AlarmName=alarm["AlarmName"], StateValue=new, StateReason=reason[:1023]
            )
            transitions.append(
                AlarmTransition(
                    alarm["AlarmName"], old, new, reason, self._notify(alarm, old, new, reason, now)
                )
            )
        return transitions

    def _notify(self, alarm: dict[str, Any], old: str, new: str, reason: str, now: datetime) -> list[str]:
        if not alarm.get("ActionsEnabled", True):
            return []
        actions_key = {"ALARM": "AlarmActions", "OK": "OKActions"}.get(new, "InsufficientDataActions")
        topics = [arn for arn in alarm.get(actions_key, []) if arn.startswith("arn:aws:sns:")]
        alert = Alert(
            kind={"ALARM": "alarm", "OK": "ok"}.get(new, "insufficient-data"),
            subject=f'{new}: "{alarm["AlarmName"]}" in {self.region}',
            message=reason,
            severity="critical" if new == "ALARM" else "info",
            payload=alarm_message(alarm, old, new, reason, self.region, now),
            alarm_name=alarm["AlarmName"],
        )
        for topic in topics:
            publish_alert(self.clients.sns, self.clients.dynamodb, topic, self.ledger_table, alert, now=now)
        return topics
