"""The one map from botocore failures to the domain's error taxonomy (see ``fleetota_core.errors``).

Every adapter turns a failed AWS call into a domain error here, so whether a failure is retried
depends on what it is (Transient, Permanent, Unavailable), never on which adapter raised it.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectTimeoutError,
    CredentialRetrievalError,
    EndpointConnectionError,
    HTTPClientError,
    IncompleteReadError,
    NoAuthTokenError,
    NoCredentialsError,
    NoRegionError,
    PartialCredentialsError,
    TokenRetrievalError,
)
from botocore.exceptions import ConnectionError as BotoConnectionError  # every failure to connect

from fleetota_core.errors import (
    BackendUnavailableError,
    FleetOTAError,
    PermanentError,
    ResourceNotFoundError,
    TransientAWSError,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

# What a boto3 call can raise; entrypoints that map errors to messages catch these with FleetOTAError.
AWS_CLIENT_ERRORS: tuple[type[Exception], ...] = (BotoCoreError, ClientError)

_TRANSIENT_CODES = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "RequestLimitExceeded",
        "ThrottlingException",
        "Throttling",
        "ThrottledException",
        "TooManyRequestsException",
        "RequestThrottled",
        "RequestThrottledException",
        "SlowDown",
        "InternalError",
        "InternalFailure",
        "InternalServerError",
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "RequestTimeout",
        "RequestTimeoutException",
        "TransactionInProgressException",
        "TransactionConflictException",
    }
)
_NOT_FOUND_CODES = frozenset(
    {
        "ResourceNotFoundException",
        "NoSuchBucket",
        "NoSuchKey",
        "NotFound",
        "404",
        "AWS.SimpleQueueService.NonExistentQueue",
        "QueueDoesNotExist",
    }
)
# Credentials that AWS rejects as unknown or expired: nothing works until someone renews them.
_CREDENTIAL_CODES = frozenset(
    {"ExpiredToken", "ExpiredTokenException", "InvalidClientTokenId", "UnrecognizedClientException"}
)
_NO_CREDENTIALS = (
    NoCredentialsError,
    PartialCredentialsError,
    CredentialRetrievalError,
    NoAuthTokenError,
    TokenRetrievalError,
    NoRegionError,
)


def error_code(exc: BaseException) -> str:
    """The AWS error code of a ClientError (``"ThrottlingException"``, ``"404"``), else ``""``."""
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code", ""))
    return ""


def _status(exc: ClientError) -> int:
    return int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)


def classify(exc: BaseException) -> type[FleetOTAError]:
    """The domain error class that a failed AWS call becomes.

    Returns
    -------
    type
        ``TransientAWSError`` (throttling, 5xx, read timeouts, reset connections),
        ``ResourceNotFoundError`` (a missing bucket, key, table or queue), ``PermanentError``
        (access denied, a rejected request, anything unknown) or ``BackendUnavailableError``
        (no endpoint answers, no usable credentials). A domain error keeps its own class.
    """
    if isinstance(exc, FleetOTAError):
        return type(exc)
    if isinstance(exc, ClientError):
        code, status = error_code(exc), _status(exc)
        if code in _CREDENTIAL_CODES:
            return BackendUnavailableError
        if code in _TRANSIENT_CODES or status == 429 or (status >= 500 and status != 501):
            return TransientAWSError
        if code in _NOT_FOUND_CODES or status == 404:
            return ResourceNotFoundError
        return PermanentError
    if isinstance(exc, (BotoConnectionError, *_NO_CREDENTIALS)):
        return BackendUnavailableError
    if isinstance(exc, HTTPClientError | IncompleteReadError | TimeoutError | ConnectionResetError):
        return TransientAWSError
    return PermanentError


def translate(exc: BaseException, doing: str) -> FleetOTAError:
    """A domain error of class :func:`classify` for a failed AWS call; ``doing`` says what was attempted."""
    if isinstance(exc, FleetOTAError):
        return exc
    kind = classify(exc)
    if isinstance(exc, ClientError):
        code, message = error_code(exc), exc.response.get("Error", {}).get("Message", "")
        if kind is TransientAWSError:
            return kind(f"{doing}: AWS {code} (retryable): {message}")
        if kind is ResourceNotFoundError:
            return kind(f"{doing}: it does not exist ({code}); is the stack provisioned?")
        return kind(f"{doing}: AWS {code}: {message}")
    if isinstance(exc, BotoConnectionError):
        endpoint = getattr(exc, "kwargs", {}).get("endpoint_url", "")
        return kind(f"{doing}: cannot reach the AWS endpoint {endpoint}; is the local stack running?")
    return kind(f"{doing}: {exc}")


@contextmanager
def reading(what: str) -> Iterator[None]:
    """Re-raise AWS failures while reading ``what`` as the domain errors :func:`translate` gives."""
    try:
        yield
    except AWS_CLIENT_ERRORS as exc:
        raise translate(exc, f"reading {what}") from exc


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
