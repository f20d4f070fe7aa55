"""S3 buckets that deploy and destroy manage: the artifacts bucket, and emptying the stack's buckets."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from fleetota_core.errors import DeployError

if TYPE_CHECKING:
    from pathlib import Path

_DELETE_BATCH = 1000  # DeleteObjects takes at most 1000 keys per call


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


class BucketStore:
    """Bucket operations on an injected S3 client (``clients.s3``)."""

    def __init__(self, client: Any) -> None:
        self.client = client

    def ensure_bucket(self, bucket: str, region: str) -> bool:
        """Create ``bucket`` encrypted and with public access blocked unless it exists; True if created."""
        try:
            self.client.head_bucket(Bucket=bucket)
            return False
        except ClientError as exc:
            if _code(exc) in {"403", "AccessDenied", "Forbidden"}:
                raise DeployError(
                    f"the artifacts bucket {bucket} exists but this account cannot use it; "
                    "pass --artifacts-bucket with a bucket you own"
                ) from exc
            if _code(exc) not in {"404", "NoSuchBucket", "NotFound"}:
                raise
        location = (
            {} if region == "us-east-1" else {"CreateBucketConfiguration": {"LocationConstraint": region}}
        )
        self.client.create_bucket(Bucket=bucket, **location)
        self.client.put_bucket_encryption(
            Bucket=bucket,
            ServerSideEncryptionConfiguration={
                "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]
            },
        )
        self.client.put_public_access_block(
            Bucket=bucket,
            PublicAccessBlockConfiguration={
                "BlockPublicAcls": True,
                "IgnorePublicAcls": True,
                "BlockPublicPolicy": True,
                "RestrictPublicBuckets": True,
            },
        )
        return True

    def upload_once(self, bucket: str, key: str, path: Path) -> bool:
        """Upload unless ``key`` is already there; keys carry a content hash, so existing means equal."""
        try:
            self.client.head_object(Bucket=bucket, Key=key)
            return False
        except ClientError as exc:
            if _code(exc) not in {"404", "NoSuchKey", "NotFound"}:
                raise
        self.client.upload_file(str(path), bucket, key)
        return True

    def put_text(self, bucket: str, key: str, body: str) -> None:
        self.client.put_object(Bucket=bucket, Key=key, Body=body.encode())

    def exists(self, bucket: str) -> bool:
        try:
            self.client.head_bucket(Bucket=bucket)
            return True
        except ClientError as exc:
            if _code(exc) in {"404", "NoSuchBucket", "NotFound"}:
                return False
            raise

    def empty(self, bucket: str) -> int:
        """Delete every object version and delete marker; the number removed (0 if no such bucket)."""
        removed = 0
        paginator = self.client.get_paginator("list_object_versions")
        try:
            for page in paginator.paginate(Bucket=bucket):
                keys = [
                    {"Key": item["Key"], "VersionId": item["VersionId"]}
                    for item in page.get("Versions", []) + page.get("DeleteMarkers", [])
                ]
                for start in range(0, len(keys), _DELETE_BATCH):
                    batch = keys[start : start + _DELETE_BATCH]
                    response = self.client.delete_objects(
                        Bucket=bucket, Delete={"Objects": batch, "Quiet": True}
                    )
                    if response.get("Errors"):
                        first = response["Errors"][0]
                        raise DeployError(
                            f"could not empty bucket {bucket}: {first.get('Key')}: {first.get('Message')}"
                        )
                    removed += len(batch)
        except ClientError as exc:
            if _code(exc) == "NoSuchBucket":
                return removed
            raise
        return removed

    def delete_bucket(self, bucket: str) -> None:
        self.client.delete_bucket(Bucket=bucket)
