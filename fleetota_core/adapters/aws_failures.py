"""Map botocore failures to domain errors, so callers above the adapters never see botocore."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from fleetota_core.errors import BackendUnavailableError, FleetOTAError, TransientAWSError

if TYPE_CHECKING:
    from collections.abc import Callable

_TRANSIENT_CODES = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "RequestLimitExceeded",
        "ThrottlingException",
        "Throttling",
        "ThrottledException",
        "SlowDown",
        "InternalError",
        "InternalServerError",
        "ServiceUnavailable",
        "RequestTimeout",
        "TransactionInProgressException",
    }
)


def error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def conditional_write(write: Callable[..., Any], **request: Any) -> bool:
    """Make a conditional DynamoDB write: True if applied, False if its condition did not hold.

    Any other failure raises as it came.
    """
    try:
        write(**request)
    except ClientError as exc:
        if error_code(exc) == "ConditionalCheckFailedException":
            return False
        raise
    return True


def is_transient(exc: ClientError) -> bool:
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
    return error_code(exc) in _TRANSIENT_CODES or status >= 500


def translate(exc: Exception, doing: str) -> FleetOTAError:
    """A domain error for a failed AWS call; ``doing`` says what was attempted, for the message."""
    if isinstance(exc, ClientError):
        code = error_code(exc)
        message = exc.response.get("Error", {}).get("Message", "")
        if is_transient(exc):
            return TransientAWSError(f"{doing}: AWS {code} (retryable): {message}")
        return BackendUnavailableError(f"{doing}: AWS {code}: {message}")
    if isinstance(exc, BotoCoreError):
        return TransientAWSError(f"{doing}: {exc}")
    return FleetOTAError(f"{doing}: {exc}")
