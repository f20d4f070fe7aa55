"""The telemetry bucket: where vehicles upload gzip NDJSON batches under ``raw/dt=.../hour=.../``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError

from fleetota_core.adapters.aws_errors import classify, error_code, translate
from fleetota_core.errors import BackendUnavailableError, FleetOTAError, ResourceNotFoundError

if TYPE_CHECKING:
    from collections.abc import Iterator

RAW_PREFIX = "raw/"
_MISSING_BUCKET = {"NoSuchBucket", "404", "NotFound"}


class TelemetryStore:
    """Reads and writes telemetry batches in one bucket.

    Parameters
    ----------
    bucket:
        The telemetry bucket's name (``Resources.telemetry_bucket``).
    s3_client:
        An injected boto3 S3 client (``client_factory(settings).s3``).
    """

    def __init__(self, bucket: str, s3_client: Any) -> None:
        self.bucket = bucket
        self._s3 = s3_client

    def _fail(self, exc: Exception, action: str) -> FleetOTAError:
        # The class comes from the one taxonomy; only the wording is this store's own.
        kind = classify(exc)
        if kind is BackendUnavailableError and isinstance(exc, EndpointConnectionError):
            endpoint = exc.kwargs.get("endpoint_url", "")
            return kind(
                f"cannot reach the S3 endpoint {endpoint} to {action}; is the local stack running? "
                "(`python -m fleetota_core local up`)"
            )
        if kind is ResourceNotFoundError and error_code(exc) in _MISSING_BUCKET:
            return kind(
                f"telemetry bucket {self.bucket!r} does not exist; provision the stack first "
                "(`python -m fleetota_core local up`, or deploy it)"
            )
        return translate(exc, f"S3 failed to {action} in {self.bucket!r}")

    def check(self) -> None:
        """Fail fast with a clear error if the endpoint is unreachable or the bucket is missing."""
        try:
            self._s3.head_bucket(Bucket=self.bucket)
        except (BotoCoreError, ClientError) as exc:
            raise self._fail(exc, f"reach bucket {self.bucket!r}") from exc

    def put_batch(self, key: str, body: bytes) -> None:
        """Store one gzip NDJSON batch."""
        try:
            self._s3.put_object(
                Bucket=self.bucket,
                Key=key,
                Body=body,
                # The object is a .gz file, not a gzip transfer encoding that clients would undo.
                ContentType="application/gzip",
            )
        except (BotoCoreError, ClientError) as exc:
            raise self._fail(exc, f"upload {key}") from exc

    def list_keys(self, prefix: str = RAW_PREFIX) -> Iterator[str]:
        """Every object key under ``prefix``, in key order."""
        try:
            for page in self._s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix):
                for obj in page.get("Contents", []):
                    yield obj["Key"]
        except (BotoCoreError, ClientError) as exc:
            raise self._fail(exc, f"list {prefix}") from exc

    def get_batch(self, key: str) -> bytes:
        """The stored bytes of one batch (still gzip-compressed)."""
        try:
            return self._s3.get_object(Bucket=self.bucket, Key=key)["Body"].read()
        except (BotoCoreError, ClientError) as exc:
            raise self._fail(exc, f"read {key}") from exc
