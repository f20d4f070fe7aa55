"""Lambda's SQS event source, as the local runtime plays it: receive a batch (honouring the batching
window), and after the invocation delete what succeeded, by Lambda's partial-batch rules."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fleetota_core.local.functions import Invocation
    from fleetota_core.local.stack_spec import QueueSourceSpec

# ReceiveMessage and DeleteMessageBatch take at most 10 messages.
SQS_MAX_MESSAGES = 10


class QueueReader:
    """Receives event-source batches from one queue through an injected SQS client."""

    def __init__(
        self, sqs: Any, stop: threading.Event | None = None, visibility_timeout: int | None = None
    ) -> None:
        self.sqs = sqs
        self.stop = stop or threading.Event()
        self.visibility_timeout = visibility_timeout

    def batch(
        self, source: QueueSourceSpec, url: str, wait_seconds: int, gather: bool
    ) -> list[dict[str, Any]]:
        """Up to ``batch_size`` messages. With ``gather``, as Lambda's event source does with a
        batching window: once a first message is in, wait out the window, then take what came."""
        batch = self._receive(source, url, wait_seconds, [])
        if gather and batch and len(batch) < source.batch_size and source.batching_window_s > 0:
            self.stop.wait(source.batching_window_s)
            batch = self._receive(source, url, 0, batch)
        return batch

    def _receive(
        self, source: QueueSourceSpec, url: str, wait_seconds: int, batch: list[dict[str, Any]]
    ) -> list[dict[str, Any]]:
        first = len(batch)
        while len(batch) < source.batch_size:
            wanted = min(SQS_MAX_MESSAGES, source.batch_size - len(batch))
            kwargs: dict[str, Any] = {
                "QueueUrl": url,
                "MaxNumberOfMessages": wanted,
                "WaitTimeSeconds": wait_seconds if len(batch) == first else 0,
                "AttributeNames": ["All"],
                "MessageAttributeNames": ["All"],
            }
            if self.visibility_timeout is not None:
                kwargs["VisibilityTimeout"] = self.visibility_timeout
            messages = self.sqs.receive_message(**kwargs).get("Messages", [])
            batch.extend(messages)
            if len(messages) < wanted:
                break
        return batch

    def delete(self, url: str, messages: list[dict[str, Any]]) -> None:
        for start in range(0, len(messages), SQS_MAX_MESSAGES):
            self.sqs.delete_message_batch(
                QueueUrl=url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
                    for i, m in enumerate(messages[start : start + SQS_MAX_MESSAGES])
                ],
            )


def failed_message_ids(invocation: Invocation, messages: list[dict[str, Any]], partial: bool) -> set[str]:
    """Which messages stay on the queue, by Lambda's rules for SQS event sources."""
    every = {m["MessageId"] for m in messages}
    if invocation.failed:
        return every
    if not partial:
        return set()
    response = invocation.response
    if not isinstance(response, dict) or not response.get("batchItemFailures"):
        return set()
    failed = {
        str(item.get("itemIdentifier", ""))
        for item in response["batchItemFailures"]
        if isinstance(item, dict)
    }
    # An identifier that is empty or not in the batch makes Lambda retry the whole batch.
    return every if not failed <= every else failed
