"""Firmware artifacts, signed release manifests and job documents in the firmware bucket.

Layout: ``firmware/<version>/<file>`` (artifact), ``releases/<version>.json`` (signed release),
``jobs/<vin>/<deployment_id>.json`` (signed job document, one per vehicle and deployment).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from fleetota_core.adapters.aws_errors import AWS_CLIENT_ERRORS, error_code, reading, translate
from fleetota_core.domain.firmware import FirmwareRelease
from fleetota_core.errors import ConflictError, InputError

if TYPE_CHECKING:
    from collections.abc import Mapping

    from fleetota_core.domain.job_document import SignedJobDocument

RELEASES_PREFIX = "releases/"


def artifact_key(version: str, filename: str) -> str:
    return f"firmware/{version}/{filename}"


def release_key(version: str) -> str:
    return f"{RELEASES_PREFIX}{version}.json"


def job_key(vin: str, deployment_id: str) -> str:
    return f"jobs/{vin}/{deployment_id}.json"


class FirmwareStore:
    def __init__(self, s3: Any, bucket: str) -> None:
        self.s3 = s3
        self.bucket = bucket

    def release_exists(self, version: str) -> bool:
        try:
            self.s3.head_object(Bucket=self.bucket, Key=release_key(version))
        except ClientError as exc:
            if error_code(exc) in ("404", "NoSuchKey", "NotFound"):
                return False
            raise translate(exc, f"looking for firmware {version} in {self.bucket}") from exc
        except AWS_CLIENT_ERRORS as exc:
            raise translate(exc, f"looking for firmware {version} in {self.bucket}") from exc
        return True

    def artifact_key(self, version: str, filename: str) -> str:
        return artifact_key(version, filename)

    def put_artifact(self, version: str, filename: str, body: bytes, sha256_hex: str) -> str:
        """Store a release's artifact; its key."""
        key = artifact_key(version, filename)
        with reading(f"bucket {self.bucket}"):
            self.s3.put_object(Bucket=self.bucket, Key=key, Body=body, Metadata={"sha256": sha256_hex})
        return key

    def artifact_facts(self, key: str) -> tuple[int, str | None] | None:
        """Size and the sha256 recorded at upload (object metadata) of an artifact; None if missing."""
        try:
            head = self.s3.head_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if error_code(exc) in ("404", "NoSuchKey", "NotFound"):
                return None
            raise translate(exc, f"looking for artifact {key} in {self.bucket}") from exc
        except AWS_CLIENT_ERRORS as exc:
            raise translate(exc, f"looking for artifact {key} in {self.bucket}") from exc
        return int(head["ContentLength"]), head.get("Metadata", {}).get("sha256")

    def get_artifact(self, key: str, max_bytes: int) -> bytes | None:
        """An artifact's bytes (the source of a delta); None if missing, ``InputError`` if too large."""
        try:
            response = self.s3.get_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if error_code(exc) in ("404", "NoSuchKey", "NotFound"):
                return None
            raise translate(exc, f"reading artifact {key} from {self.bucket}") from exc
        except AWS_CLIENT_ERRORS as exc:
            raise translate(exc, f"reading artifact {key} from {self.bucket}") from exc
        if int(response["ContentLength"]) > max_bytes:
            response["Body"].close()
            raise InputError(f"artifact {key} is {response['ContentLength']} bytes, more than {max_bytes}")
        with reading(f"artifact {key} in {self.bucket}"):
            return bytes(response["Body"].read())

    def delete_artifact(self, key: str) -> None:
        """Remove an artifact no release points at (a publish that failed after the upload)."""
        with reading(f"bucket {self.bucket}"):
            self.s3.delete_object(Bucket=self.bucket, Key=key)

    def put_release(self, release: FirmwareRelease) -> None:
        """Write the signed release once; a second publish of the same version is a conflict."""
        try:
            self.s3.put_object(
                Bucket=self.bucket,
                Key=release_key(release.version),
                Body=release.model_dump_json().encode(),
                ContentType="application/json",
                IfNoneMatch="*",
            )
        except ClientError as exc:
            if error_code(exc) in ("PreconditionFailed", "ConditionalRequestConflict"):
                raise ConflictError(f"firmware {release.version} is already published") from exc
            raise translate(exc, f"publishing firmware {release.version} to {self.bucket}") from exc
        except AWS_CLIENT_ERRORS as exc:
            raise translate(exc, f"publishing firmware {release.version} to {self.bucket}") from exc

    def get_release(self, version: str) -> FirmwareRelease | None:
        try:
            body = self.s3.get_object(Bucket=self.bucket, Key=release_key(version))["Body"].read()
        except ClientError as exc:
            if error_code(exc) in ("NoSuchKey", "404"):
                return None
            raise translate(exc, f"reading firmware {version} from {self.bucket}") from exc
        except AWS_CLIENT_ERRORS as exc:
            raise translate(exc, f"reading firmware {version} from {self.bucket}") from exc
        return FirmwareRelease.model_validate_json(body)

    def list_releases(self) -> list[FirmwareRelease]:
        out: list[FirmwareRelease] = []
        with reading(f"bucket {self.bucket}"):
            for page in self.s3.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=RELEASES_PREFIX
            ):
                for obj in page.get("Contents", []):
                    body = self.s3.get_object(Bucket=self.bucket, Key=obj["Key"])["Body"].read()
                    out.append(FirmwareRelease.model_validate_json(body))
        return out

    def release_manifests(
        self, known: Mapping[str, tuple[str, FirmwareRelease]]
    ) -> dict[str, tuple[str, FirmwareRelease]]:
        """Every release manifest by key, with its ETag: one listing, and a GetObject only for the
        manifests not in ``known`` with the same ETag (a warm reader lists, it does not re-read)."""
        out: dict[str, tuple[str, FirmwareRelease]] = {}
        with reading(f"bucket {self.bucket}"):
            for page in self.s3.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=RELEASES_PREFIX
            ):
                for obj in page.get("Contents", []):
                    key, etag = obj["Key"], obj.get("ETag", "")
                    cached = known.get(key)
                    if cached is not None and etag and cached[0] == etag:
                        out[key] = cached
                        continue
                    body = self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read()
                    out[key] = (etag, FirmwareRelease.model_validate_json(body))
        return out

    def put_job(self, vin: str, deployment_id: str, signed: SignedJobDocument) -> str:
        key = job_key(vin, deployment_id)
        with reading(f"bucket {self.bucket}"):
            self.s3.put_object(
                Bucket=self.bucket,
                Key=key,
                Body=signed.model_dump_json().encode(),
                ContentType="application/json",
            )
        return key

    def get_job(self, key: str) -> bytes:
        """A signed job document, read by the vehicle it is for (in a session tagged with its VIN)."""
        with reading(f"job document {key} in {self.bucket}"):
            return bytes(self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read())

    def presigned_get(self, key: str, expires_s: int) -> str:
        # Presigning is local computation: no request is made.
        return self.s3.generate_presigned_url(
            "get_object", Params={"Bucket": self.bucket, "Key": key}, ExpiresIn=min(expires_s, 604800)
        )
