"""Small read-only S3 helpers for the dashboard: newest keys under a prefix and (gzipped) text bodies."""

from __future__ import annotations

import gzip
from typing import Any

from fleetota_core.adapters.aws_errors import reading


def newest_objects(s3: Any, bucket: str, prefix: str, limit: int = 20, max_listed: int = 5000) -> list[dict]:
    """Up to ``limit`` objects under ``prefix``, newest first: ``{"key", "size", "modified"}``.

    Listing stops after ``max_listed`` keys so a large prefix cannot stall a page.
    """
    found: list[dict] = []
    with reading(f"bucket {bucket}"):
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for obj in page.get("Contents", []):
                found.append({"key": obj["Key"], "size": obj["Size"], "modified": obj["LastModified"]})
            if len(found) >= max_listed:
                break
    found.sort(key=lambda o: o["modified"], reverse=True)
    return found[:limit]


def count_objects(s3: Any, bucket: str, prefix: str, max_listed: int = 100_000) -> int:
    """How many objects are under ``prefix`` (capped at ``max_listed``)."""
    total = 0
    with reading(f"bucket {bucket}"):
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            total += page.get("KeyCount", len(page.get("Contents", [])))
            if total >= max_listed:
                break
    return total


def read_text(s3: Any, bucket: str, key: str, max_bytes: int = 1_000_000) -> str:
    """The body of ``key`` as text, gunzipped when it is gzip, cut at ``max_bytes``."""
    with reading(f"s3://{bucket}/{key}"):
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    if body[:2] == b"\x1f\x8b":
        body = gzip.decompress(body)
    return body[:max_bytes].decode("utf-8", errors="replace")


def child_prefixes(s3: Any, bucket: str, prefix: str) -> list[str]:
    """The "folders" directly under ``prefix`` (e.g. ``quarantine/records/``)."""
    found: list[str] = []
    with reading(f"bucket {bucket}"):
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix, Delimiter="/"):
            found += [p["Prefix"] for p in page.get("CommonPrefixes", [])]
    return found
