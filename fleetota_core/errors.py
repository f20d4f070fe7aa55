"""Domain exceptions. Each entrypoint maps them to one clear message."""

from __future__ import annotations


class FleetOTAError(Exception):
    """Base class: the message is written for the operator who will read it."""


class ConfigurationError(FleetOTAError):
    """Settings or stack outputs are missing or inconsistent."""


class BackendUnavailableError(FleetOTAError):
    """The AWS endpoint (local or real) cannot be reached."""


class ResourceNotFoundError(FleetOTAError):
    """A bucket, table, queue, campaign, release or vehicle does not exist."""


class ValidationError(FleetOTAError):
    """Input from an operator or a vehicle breaks a rule; the message names the rule."""


class ConflictError(FleetOTAError):
    """A write lost a race or would repeat an existing thing (a duplicate version, a stale update)."""


class TransientAWSError(FleetOTAError):
    """A retryable AWS failure (throttling, 5xx, timeouts): the caller should let the item be retried."""


class DeployError(FleetOTAError):
    """Packaging, uploading or applying the CloudFormation stack failed; the message names the cause."""
