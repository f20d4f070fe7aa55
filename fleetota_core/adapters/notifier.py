"""SNS: job notifications to vehicles (filterable by ``vin``) and operator alerts."""

from __future__ import annotations

import json
import logging
from typing import Any

from fleetota_core.adapters.alerts import Alert, publish_alert
from fleetota_core.adapters.aws_errors import reading
from fleetota_core.errors import FleetOTAError

logger = logging.getLogger(__name__)

# Campaign events that are alerted, as the feed names them, with their severity.
_CAMPAIGN_ALERTS = {
    "AUTO_PAUSED": ("auto-pause", "warning"),
    "AUTO_ABORTED": ("abort", "critical"),
    "ABORTED": ("abort", "critical"),
    "COMPLETED": ("completed", "info"),
}


class Notifier:
    """Job notifications and campaign alerts; alerts are recorded in ``ledger_table`` when one is given."""

    def __init__(
        self,
        sns: Any,
        job_topic_arn: str,
        alerts_topic_arn: str,
        dynamodb: Any = None,
        ledger_table: str | None = None,
    ) -> None:
        self.sns = sns
        self.job_topic_arn = job_topic_arn
        self.alerts_topic_arn = alerts_topic_arn
        self.dynamodb = dynamodb
        self.ledger_table = ledger_table if dynamodb is not None else None

    def notify_vehicles(self, notices: list[tuple[str, dict[str, Any]]]) -> set[str]:
        """Push job notifications, ten per request; the VINs whose notice SNS accepted.

        Each carries a ``vin`` attribute, so a per-vehicle subscription can filter. An entry SNS
        refuses for a fault of its own (throttling, an internal error) is left out of the result
        and logged; one refused as invalid is a bug here and raises.
        """
        published: set[str] = set()
        for start in range(0, len(notices), 10):
            chunk = notices[start : start + 10]
            entries = [
                {
                    "Id": str(n),
                    "Message": json.dumps(message, separators=(",", ":")),
                    "MessageAttributes": {"vin": {"DataType": "String", "StringValue": vin}},
                }
                for n, (vin, message) in enumerate(chunk)
            ]
            with reading(f"topic {self.job_topic_arn}"):
                response = self.sns.publish_batch(
                    TopicArn=self.job_topic_arn, PublishBatchRequestEntries=entries
                )
            published.update(chunk[int(ok["Id"])][0] for ok in response.get("Successful", []))
            for failed in response.get("Failed", []):
                vin = chunk[int(failed["Id"])][0]
                if failed.get("SenderFault"):
                    raise FleetOTAError(
                        f"SNS refused the job notification for {vin}: {failed.get('Message')}"
                    )
                logger.warning("SNS did not take the job notification for %s: %s", vin, failed.get("Code"))
        return published

    def alert(self, subject: str, message: dict[str, Any]) -> str:
        """Alert operators about a campaign event (``message["event"]``); returns the SNS message id."""
        kind, severity = _CAMPAIGN_ALERTS.get(str(message.get("event")), ("campaign", "info"))
        alert = Alert(
            kind=kind,
            subject=subject,
            message=str(message.get("detail") or ""),
            severity=severity,
            payload=message,
            campaign_id=message.get("campaign_id"),
            source="update-manager",
        )
        return publish_alert(self.sns, self.dynamodb, self.alerts_topic_arn, self.ledger_table, alert)


class JobNotificationQueue:
    """The simulator's own SQS queue on the job-notification topic (one per simulator process).

    Stands in for the MQTT connection AWS IoT Jobs would use: one long-polled queue for the whole
    fleet, so the cost grows with notifications, not with vehicles x polling interval.
    """

    def __init__(self, sqs: Any, sns: Any, topic_arn: str, queue_name: str) -> None:
        self.sqs = sqs
        self.sns = sns
        self.topic_arn = topic_arn
        self.queue_name = queue_name
        self.queue_url: str | None = None
        self.subscription_arn: str | None = None

    def open(self) -> str:
        with reading(f"queue {self.queue_name}"):
            self.queue_url = self.sqs.create_queue(
                QueueName=self.queue_name, Attributes={"MessageRetentionPeriod": "86400"}
            )["QueueUrl"]
            attrs = self.sqs.get_queue_attributes(QueueUrl=self.queue_url, AttributeNames=["QueueArn"])
            queue_arn = attrs["Attributes"]["QueueArn"]
            policy = {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"Service": "sns.amazonaws.com"},
                        "Action": "sqs:SendMessage",
                        "Resource": queue_arn,
                        "Condition": {"ArnEquals": {"aws:SourceArn": self.topic_arn}},
                    }
                ],
            }
            self.sqs.set_queue_attributes(QueueUrl=self.queue_url, Attributes={"Policy": json.dumps(policy)})
            self.subscription_arn = self.sns.subscribe(
                TopicArn=self.topic_arn,
                Protocol="sqs",
                Endpoint=queue_arn,
                Attributes={"RawMessageDelivery": "true"},
                ReturnSubscriptionArn=True,
            )["SubscriptionArn"]
        return self.queue_url

    def receive(self, wait_s: float = 0.0) -> list[dict[str, Any]]:
        """Up to 10 notifications (one long poll), deleted once read."""
        if self.queue_url is None:
            self.open()
        with reading(f"queue {self.queue_name}"):
            messages = self.sqs.receive_message(
                QueueUrl=self.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=int(max(0, min(wait_s, 20)))
            ).get("Messages", [])
            if messages:
                self.sqs.delete_message_batch(
                    QueueUrl=self.queue_url,
                    Entries=[
                        {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)
                    ],
                )
        return [_notification(m["Body"]) for m in messages]

    def close(self) -> None:
        with reading(f"queue {self.queue_name}"):
            if self.subscription_arn:
                self.sns.unsubscribe(SubscriptionArn=self.subscription_arn)
            if self.queue_url:
                self.sqs.delete_queue(QueueUrl=self.queue_url)
        self.queue_url = self.subscription_arn = None


def _notification(body: str) -> dict[str, Any]:
    payload = json.loads(body)
    # Without raw delivery the SNS envelope wraps the message.
    if isinstance(payload, dict) and payload.get("Type") == "Notification" and "Message" in payload:
        return json.loads(payload["Message"])
    return payload
