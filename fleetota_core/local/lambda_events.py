"""Lambda events in the exact shapes AWS delivers them (SQS batches, EventBridge schedules)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from fleetota_core.settings import LOCAL_ACCOUNT_ID


def _message_attributes(attributes: dict[str, Any]) -> dict[str, Any]:
    # SQS API answers "StringValue"; Lambda events spell them "stringValue".
    return {
        name: {
            "stringValue": value.get("StringValue"),
            "binaryValue": value.get("BinaryValue"),
            "stringListValues": value.get("StringListValues", []),
            "binaryListValues": value.get("BinaryListValues", []),
            "dataType": value.get("DataType", "String"),
        }
        for name, value in attributes.items()
    }


def sqs_record(message: dict[str, Any], queue_arn: str, region: str) -> dict[str, Any]:
    """One ``Records`` entry of an SQS event, from a ``receive_message`` message."""
    attributes = message.get("Attributes", {})
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": {
            "ApproximateReceiveCount": attributes.get("ApproximateReceiveCount", "1"),
            "SentTimestamp": attributes.get("SentTimestamp", ""),
            "SenderId": attributes.get("SenderId", ""),
            "ApproximateFirstReceiveTimestamp": attributes.get("ApproximateFirstReceiveTimestamp", ""),
        },
        "messageAttributes": _message_attributes(message.get("MessageAttributes", {})),
        "md5OfBody": message.get("MD5OfBody", ""),
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": region,
    }


def sqs_event(messages: list[dict[str, Any]], queue_arn: str, region: str) -> dict[str, Any]:
    return {"Records": [sqs_record(m, queue_arn, region) for m in messages]}


def scheduled_event(rule_arn: str, region: str, now: datetime | None = None) -> dict[str, Any]:
    """The event EventBridge sends a target when a schedule fires."""
    moment = (now or datetime.now(UTC)).replace(microsecond=0)
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": LOCAL_ACCOUNT_ID,
        "time": moment.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": region,
        "resources": [rule_arn],
        "detail": {},
    }
