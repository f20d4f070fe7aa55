"""Domain exceptions. Each entrypoint maps them to one clear message.

Every failure of a backend call is one of three kinds, and whether it is retried depends on the
kind, never on which module raised it:

- :class:`TransientError`: retrying the same call can succeed (throttling, 5xx, timeouts, resets).
- :class:`PermanentError`: retrying will not help (not found, access denied, a rejected request).
- :class:`UnavailableError`: the backend cannot be reached at all (no endpoint, no credentials);
  it may come back, so callers that keep running retry it with backoff.
"""

from __future__ import annotations


class FleetOTAError(Exception):
    """Base class: the message is written for the operator who will read it."""


class TransientError(FleetOTAError):
    """Retrying the same call may succeed: throttling, a 5xx, a timeout, a reset connection."""


class PermanentError(FleetOTAError):
    """Retrying the same call will not help until someone changes the request, the data or the stack."""


class UnavailableError(FleetOTAError):
    """The backend cannot be reached at all: no endpoint answers, or there are no usable credentials."""


class ConfigurationError(PermanentError):
    """Settings or stack outputs are missing or inconsistent."""


class BackendUnavailableError(UnavailableError):
    """The AWS endpoint (local or real) cannot be reached."""


class ResourceNotFoundError(PermanentError):
    """A bucket, table, queue, campaign, release or vehicle does not exist."""


class ValidationError(PermanentError):
    """Input from an operator or a vehicle breaks a rule; the message names the rule."""


class InputError(ValidationError):
    """The operator's input cannot be used as given: an argument, a spec file, a spec's or manifest's rule.

    The CLI exits with 2 for it (argparse's code for a usage error) rather than 1.
    """


class IntegrityError(PermanentError):
    """Signed data does not verify: it was altered after signing, or signed by the wrong key's role."""


class ConflictError(PermanentError):
    """A write lost a race or would repeat an existing thing (a duplicate version, a stale update).

    Permanent for the request as sent: the caller has to look again before it tries anything else.
    """


class TransientAWSError(TransientError):
    """A retryable AWS failure (throttling, 5xx, timeouts): the caller should let the item be retried."""


class DeployError(FleetOTAError):
    """Packaging, uploading or applying the CloudFormation stack failed; the message names the cause."""
