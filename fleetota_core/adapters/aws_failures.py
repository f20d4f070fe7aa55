"""Map botocore failures to domain errors, so callers above the adapters never see botocore."""

from __future__ import annotations

from botocore.exceptions import BotoCoreError, ClientError

from fleetota_core.errors import BackendUnavailableError, FleetOTAError, TransientAWSError

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
