"""One error taxonomy: every botocore failure is Transient, Permanent or Unavailable, whoever raised it."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import (
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
    ParamValidationError,
    ReadTimeoutError,
)

from fleetota_core.adapters.aws_errors import classify, conditional_write, reading, translate
from fleetota_core.adapters.firmware_store import FirmwareStore
from fleetota_core.adapters.telemetry_store import TelemetryStore
from fleetota_core.errors import (
    BackendUnavailableError,
    ConfigurationError,
    ConflictError,
    FleetOTAError,
    PermanentError,
    ResourceNotFoundError,
    TransientAWSError,
    TransientError,
    UnavailableError,
    ValidationError,
)
from simulator.uploader import BatchUploader

URL = "http://127.0.0.1:9"


def client_error(code: str, status: int = 400) -> ClientError:
    response: Any = {"Error": {"Code": code, "Message": "m"}, "ResponseMetadata": {"HTTPStatusCode": status}}
    return ClientError(response, "Operation")


CASES: list[tuple[str, BaseException, type[FleetOTAError]]] = [
    ("throttling", client_error("ThrottlingException"), TransientAWSError),
    ("dynamodb throughput", client_error("ProvisionedThroughputExceededException"), TransientAWSError),
    ("s3 slow down", client_error("SlowDown", 503), TransientAWSError),
    ("internal error", client_error("InternalError", 500), TransientAWSError),
    ("service unavailable", client_error("ServiceUnavailable", 503), TransientAWSError),
    ("an unknown code with a 502", client_error("BadGatewayOfSomeKind", 502), TransientAWSError),
    ("too many requests", client_error("TooManyRequestsException", 429), TransientAWSError),
    ("not implemented", client_error("NotImplemented", 501), PermanentError),
    ("access denied", client_error("AccessDenied", 403), PermanentError),
    ("access denied exception", client_error("AccessDeniedException"), PermanentError),
    ("validation", client_error("ValidationException"), PermanentError),
    ("condition failed", client_error("ConditionalCheckFailedException"), PermanentError),
    ("an unknown 400", client_error("SomethingNew"), PermanentError),
    ("missing table", client_error("ResourceNotFoundException"), ResourceNotFoundError),
    ("missing bucket", client_error("NoSuchBucket", 404), ResourceNotFoundError),
    ("missing key", client_error("NoSuchKey", 404), ResourceNotFoundError),
    ("head 404", client_error("404", 404), ResourceNotFoundError),
    ("missing queue", client_error("AWS.SimpleQueueService.NonExistentQueue"), ResourceNotFoundError),
    ("expired credentials", client_error("ExpiredToken"), BackendUnavailableError),
    ("unknown credentials", client_error("UnrecognizedClientException"), BackendUnavailableError),
    ("no endpoint", EndpointConnectionError(endpoint_url=URL), BackendUnavailableError),
    ("connect timeout", ConnectTimeoutError(endpoint_url=URL), BackendUnavailableError),
    ("no credentials", NoCredentialsError(), BackendUnavailableError),
    ("read timeout", ReadTimeoutError(endpoint_url=URL), TransientAWSError),
    ("connection reset", ConnectionClosedError(endpoint_url=URL), TransientAWSError),
    ("bad parameters", ParamValidationError(report="Key is required"), PermanentError),
]
IDS = [name for name, _, _ in CASES]
KINDS = (TransientError, PermanentError, UnavailableError)


@pytest.mark.parametrize(("name", "exc", "expected"), CASES, ids=IDS)
def test_each_botocore_failure_is_classified_as_one_domain_error(
    name: str, exc: BaseException, expected: type
) -> None:
    assert classify(exc) is expected
    assert sum(issubclass(expected, kind) for kind in KINDS) == 1


@pytest.mark.parametrize(("name", "exc", "expected"), CASES, ids=IDS)
def test_reading_raises_the_class_translate_returns_chained_to_the_botocore_error(
    name: str, exc: BaseException, expected: type
) -> None:
    with pytest.raises(FleetOTAError) as raised, reading("campaign c-1"):
        raise exc
    translated = translate(exc, "reading campaign c-1")
    assert type(raised.value) is type(translated) is expected
    assert str(raised.value) == str(translated) and "campaign c-1" in str(raised.value)
    assert raised.value.__cause__ is exc


def test_the_older_error_names_keep_their_place_in_the_taxonomy() -> None:
    assert issubclass(TransientAWSError, TransientError)
    assert issubclass(BackendUnavailableError, UnavailableError)
    for permanent in (ResourceNotFoundError, ValidationError, ConflictError, ConfigurationError):
        assert issubclass(permanent, PermanentError)


def test_a_domain_error_passes_through_translate_unchanged() -> None:
    error = ConflictError("campaign c-1 changed meanwhile")
    assert translate(error, "writing campaign c-1") is error
    assert classify(error) is ConflictError


def test_a_failed_condition_is_a_false_write_and_any_other_failure_raises_as_it_came() -> None:
    def write(**request: Any) -> None:
        raise request["error"]

    assert conditional_write(write, error=client_error("ConditionalCheckFailedException")) is False
    assert conditional_write(lambda **_: None) is True
    with pytest.raises(ClientError):
        conditional_write(write, error=client_error("ThrottlingException"))


class FlakyClient:
    """Any boto3 operation: raises the queued errors one per call, then succeeds."""

    def __init__(self, *errors: BaseException) -> None:
        self.errors = list(errors)
        self.calls = 0

    def __getattr__(self, operation: str) -> Any:
        def call(**request: Any) -> dict[str, Any]:
            self.calls += 1
            if self.errors:
                raise self.errors.pop(0)
            return {}

        return call


class FirmwareSink:
    """Uploads through FirmwareStore, whose failures go through ``reading``."""

    def __init__(self, s3: Any) -> None:
        self.store = FirmwareStore(s3, "firmware")

    def put_batch(self, key: str, body: bytes) -> None:
        self.store.put_artifact("9.9.9", key, body, "0" * 64)


ADAPTERS = {
    "telemetry store": lambda client: TelemetryStore("fleet-telemetry", client),
    "firmware store": FirmwareSink,
}


@pytest.mark.parametrize("adapter", ADAPTERS)
def test_the_simulator_retries_a_transient_failure_whichever_adapter_raised_it(adapter: str) -> None:
    client = FlakyClient(client_error("SlowDown", 503))
    uploader = BatchUploader(ADAPTERS[adapter](client), 10, "abcd1234")
    uploader.add(["{}"] * 5)

    uploader.flush(0.0)
    assert (len(uploader.buffer), uploader.failed_flushes) == (5, 1)
    uploader.flush(10.0)  # backing off: the first flush after a failure lets the backend rest
    assert (len(uploader.buffer), client.calls) == (5, 1)
    uploader.flush(20.0)
    assert (uploader.buffer, uploader.records_sent, client.calls) == ([], 5, 2)


@pytest.mark.parametrize("adapter", ADAPTERS)
def test_the_simulator_never_retries_a_permanent_failure_whichever_adapter_raised_it(adapter: str) -> None:
    client = FlakyClient(client_error("AccessDenied", 403))
    uploader = BatchUploader(ADAPTERS[adapter](client), 10, "abcd1234")
    uploader.add(["{}"] * 5)

    with pytest.raises(PermanentError):
        uploader.flush(0.0)
    assert (len(uploader.buffer), client.calls) == (5, 1)
