"""Turns botocore failures into domain errors, so readers above the adapters see one kind of error."""

from __future__ import annotations

from contextlib import contextmanager
from typing import TYPE_CHECKING

from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError

from fleetota_core.errors import BackendUnavailableError, ResourceNotFoundError, TransientAWSError

if TYPE_CHECKING:
    from collections.abc import Iterator

_NOT_FOUND = {
    "ResourceNotFoundException",
    "NoSuchBucket",
    "NoSuchKey",
    "AWS.SimpleQueueService.NonExistentQueue",
    "QueueDoesNotExist",
    "NotFound",
}


@contextmanager
def reading(what: str) -> Iterator[None]:
    """Re-raise AWS failures while reading ``what`` as domain errors with an operator-facing message."""
    try:
        yield
    except EndpointConnectionError as exc:
        raise BackendUnavailableError(
            f"cannot reach the AWS endpoint while reading {what}; is the local stack running?"
        ) from exc
    except ClientError as exc:
        error = exc.response.get("Error", {})
        code = error.get("Code", "")
        if code in _NOT_FOUND:
            raise ResourceNotFoundError(f"{what} does not exist ({code}); is the stack provisioned?") from exc
        raise TransientAWSError(f"reading {what} failed: {code} {error.get('Message', '')}".strip()) from exc
    except BotoCoreError as exc:
        raise BackendUnavailableError(f"reading {what} failed: {exc}") from exc
