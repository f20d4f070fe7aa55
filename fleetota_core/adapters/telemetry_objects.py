"""Telemetry objects in S3: read a batch, write quarantine objects beside it under ``quarantine/``."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from fleetota_core.adapters.aws_errors import error_code, translate
from fleetota_core.errors import ResourceNotFoundError

if TYPE_CHECKING:
    from collections.abc import Mapping
    from datetime import datetime

    from fleetota_core.services.ingest.decode import QuarantinedLine
    from fleetota_core.services.ingest.ports import ObjectRef

QUARANTINE_PREFIX = "quarantine/"


class S3TelemetryObjects:
    """Reads telemetry objects; accepts an injected S3 client."""

    def __init__(self, s3: Any) -> None:
        self.s3 = s3

    def get(self, ref: ObjectRef) -> bytes:
        try:
            return self.s3.get_object(Bucket=ref.bucket, Key=ref.key)["Body"].read()
        except ClientError as exc:
            if error_code(exc) in {"NoSuchKey", "404"}:
                raise ResourceNotFoundError(f"s3://{ref.bucket}/{ref.key} no longer exists") from exc
            raise translate(exc, f"reading s3://{ref.bucket}/{ref.key}") from exc
        except BotoCoreError as exc:
            raise translate(exc, f"reading s3://{ref.bucket}/{ref.key}") from exc


def quarantine_key(ref: ObjectRef, kind: str, now: datetime) -> str:
    """Deterministic per object version, so a retried delivery overwrites rather than duplicates."""
    name = ref.key.replace("/", "__")
    return f"{QUARANTINE_PREFIX}{kind}/dt={now:%Y-%m-%d}/{name}.{ref.version_tag}.ndjson"


class S3Quarantine:
    """Quarantine objects in the telemetry bucket: one NDJSON line per bad record, with its reason."""

    def __init__(self, s3: Any, bucket: str) -> None:
        self.s3 = s3
        self.bucket = bucket

    def _put(self, key: str, lines: list[dict[str, Any]]) -> str:
        body = "".join(json.dumps(line, separators=(",", ":")) + "\n" for line in lines).encode()
        try:
            self.s3.put_object(Bucket=self.bucket, Key=key, Body=body, ContentType="application/x-ndjson")
        except (ClientError, BotoCoreError) as exc:
            raise translate(exc, f"writing quarantine object {key}") from exc
        return key

    def put_lines(self, ref: ObjectRef, lines: list[QuarantinedLine], now: datetime) -> str:
        rows = [
            {
                "source": f"s3://{ref.bucket}/{ref.key}",
                "etag": ref.version_tag,
                "line": line.line,
                "reason": line.reason,
                "detail": line.detail,
                "raw": line.raw.decode("utf-8", "replace"),
            }
            for line in lines
        ]
        return self._put(quarantine_key(ref, "records", now), rows)

    def put_object_reference(
        self,
        ref: ObjectRef,
        reason: str,
        detail: str,
        now: datetime,
        counts: Mapping[str, int] | None = None,
    ) -> str:
        row: dict[str, Any] = {"source": f"s3://{ref.bucket}/{ref.key}", "etag": ref.version_tag}
        row.update(reason=reason, detail=detail, size=ref.size, counts=dict(counts or {}))
        return self._put(quarantine_key(ref, "objects", now), [row])
