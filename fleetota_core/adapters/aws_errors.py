"""Turns botocore failures into domain errors, so readers above the adapters see one kind of error."""

from __future__ import annotations

from contextlib import contextmanager
from typing import TYPE_CHECKING

from botocore.exceptions import BotoCoreError, ClientError, ConnectTimeoutError, EndpointConnectionError

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


# What a boto3 call can raise; entrypoints that map errors to messages catch these with FleetOTAError.
AWS_CLIENT_ERRORS: tuple[type[Exception], ...] = (BotoCoreError, ClientError)


def is_unreachable(exc: BaseException) -> bool:
    """Whether ``exc`` (or what caused it) is a failure to connect to the endpoint at all."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, EndpointConnectionError | ConnectTimeoutError):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def aws_error_text(exc: BaseException) -> str | None:
    """``"AWS <Code>: <Message>"`` for a botocore ClientError, else None."""
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        return f"AWS {error.get('Code', 'error')}: {error.get('Message', '')}"
    return None
