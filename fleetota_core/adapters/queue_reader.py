"""Queue depths and a non-destructive look at dead-lettered messages."""

from __future__ import annotations

from typing import Any

from fleetota_core.adapters.aws_errors import reading


def queue_depth(sqs: Any, queue_url: str) -> dict[str, int]:
    """Visible and in-flight message counts of one queue."""
    with reading(f"queue {queue_url.rsplit('/', 1)[-1]}"):
        attrs = sqs.get_queue_attributes(
            QueueUrl=queue_url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
    return {
        "visible": int(attrs.get("ApproximateNumberOfMessages", 0)),
        "in_flight": int(attrs.get("ApproximateNumberOfMessagesNotVisible", 0)),
    }


def peek_messages(sqs: Any, queue_url: str, limit: int = 5) -> list[str]:
    """Bodies of up to ``limit`` messages, left on the queue.

    Visibility timeout 0 hands each message straight back, so looking never hides a message from the
    operator who redrives the DLQ.
    """
    with reading(f"queue {queue_url.rsplit('/', 1)[-1]}"):
        messages = sqs.receive_message(
            QueueUrl=queue_url, MaxNumberOfMessages=min(max(limit, 1), 10), VisibilityTimeout=0
        ).get("Messages", [])
    return [m.get("Body", "") for m in messages]
