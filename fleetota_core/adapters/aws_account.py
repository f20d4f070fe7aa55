"""Who and where the deployer is: the AWS account behind the credentials, and the region to use."""

from __future__ import annotations

from typing import TYPE_CHECKING

import boto3
from botocore.exceptions import (
    ClientError,
    NoCredentialsError,
    NoRegionError,
    PartialCredentialsError,
    ProfileNotFound,
)

from fleetota_core.errors import ConfigurationError

if TYPE_CHECKING:
    from fleetota_core.adapters.clients import ClientFactory

NO_CREDENTIALS = (
    "no AWS credentials found: run `aws configure` or `aws sso login`, pass --profile, "
    "or set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
)
NO_REGION = "no AWS region: pass --region, set AWS_REGION, or configure a region for the profile"


def configured_region(profile: str | None) -> str | None:
    """The region boto3 would use from AWS_REGION / AWS_DEFAULT_REGION or the profile, if any."""
    try:
        return boto3.session.Session(profile_name=profile).region_name
    except ProfileNotFound as exc:
        raise ConfigurationError(f"AWS profile {profile!r} not found in the AWS config files") from exc


def caller_account(clients: ClientFactory) -> str:
    """The account ID the credentials belong to; one clear error when they are missing or invalid."""
    try:
        return clients.sts.get_caller_identity()["Account"]
    except ProfileNotFound as exc:
        raise ConfigurationError(
            f"AWS profile {clients.settings.profile!r} not found in the AWS config files"
        ) from exc
    except (NoCredentialsError, PartialCredentialsError) as exc:
        raise ConfigurationError(NO_CREDENTIALS) from exc
    except NoRegionError as exc:
        raise ConfigurationError(NO_REGION) from exc
    except ClientError as exc:
        error = exc.response.get("Error", {})
        raise ConfigurationError(
            f"AWS rejected the credentials ({error.get('Code', 'error')}: {error.get('Message', '')}); "
            "refresh them or pass another --profile"
        ) from exc
