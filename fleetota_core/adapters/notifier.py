"""SNS: job notifications to vehicles (filterable by ``vin``) and operator alerts."""

from __future__ import annotations

import json
from typing import Any

from fleetota_core.adapters.aws_errors import reading


class Notifier:
    def __init__(self, sns: Any, job_topic_arn: str, alerts_topic_arn: str) -> None:
        self.sns = sns
        self.job_topic_arn = job_topic_arn
        self.alerts_topic_arn = alerts_topic_arn

    def notify_vehicle(self, vin: str, message: dict[str, Any]) -> str:
        """Push one job notification; the ``vin`` attribute lets a per-vehicle subscription filter."""
        with reading(f"topic {self.job_topic_arn}"):
            response = self.sns.publish(
                TopicArn=self.job_topic_arn,
                Message=json.dumps(message, separators=(",", ":")),
                MessageAttributes={"vin": {"DataType": "String", "StringValue": vin}},
            )
        return response["MessageId"]

    def alert(self, subject: str, message: dict[str, Any]) -> str:
        with reading(f"topic {self.alerts_topic_arn}"):
            response = self.sns.publish(
                TopicArn=self.alerts_topic_arn,
                Subject=subject[:100],
                Message=json.dumps(message, separators=(",", ":"), default=str),
                MessageAttributes={"source": {"DataType": "String", "StringValue": "update-manager"}},
            )
        return response["MessageId"]
