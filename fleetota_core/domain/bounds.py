"""Bounds on what an operator may ask for and a vehicle may send: every number fits a JSON/DynamoDB
number exactly, and every timestamp lies in a window the platform can keep and order.

docs/campaigns.md and docs/telemetry.md list each bound next to the field it limits.
"""

from __future__ import annotations

from datetime import timedelta

# The largest integer a JSON number (an IEEE double) holds exactly: JavaScript's MAX_SAFE_INTEGER.
MAX_SAFE_INT = 2**53 - 1
DAY_S = 86_400
MAX_JOB_TTL_S = 30 * DAY_S  # job documents and their presigned URLs
MAX_IN_PROGRESS_TIMEOUT_S = 7 * DAY_S  # AWS IoT Jobs' inProgressTimeoutInMinutes maximum (10,080 min)
MAX_BACKOFF_S = 7 * DAY_S  # a retry's backoff, base and cap
MAX_BACKOFF_FACTOR = 10.0
MAX_DEFER_RECHECK_S = DAY_S
# A wave's health-gate soak: from 6 s (time-accelerated demos and tests) to a week.
MIN_SOAK_MINUTES = 0.1
MAX_SOAK_MINUTES = 7 * 24 * 60
MAX_OFFLINE_AFTER = timedelta(days=7)
MAX_NAME_CHARS = 120
MAX_DESCRIPTION_CHARS = 2_000

# Telemetry. The raw/ objects expire after this many days (infra/template.yaml, the telemetry bucket's
# raw-tiering-and-expiry rule; tests/unit/test_telemetry_bounds.py pins the two together): a reading
# older than that could not be kept, so it is quarantined rather than stored.
RAW_RETENTION_DAYS = 365
MAX_TELEMETRY_AGE = timedelta(days=RAW_RETENTION_DAYS)
# A reading may be at most this far ahead of the processor's clock (vehicle clocks drift a little).
MAX_FUTURE_SKEW = timedelta(seconds=60)
