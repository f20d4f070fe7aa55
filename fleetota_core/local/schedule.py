"""EventBridge schedule expressions: how often the local scheduler fires a rule."""

from __future__ import annotations

import re

from fleetota_core.errors import ConfigurationError

_RATE = re.compile(r"^rate\((\d+)\s+(minute|minutes|hour|hours|day|days)\)$")
_UNIT_SECONDS = {"minute": 60, "hour": 3600, "day": 86400}


def local_interval(template_s: int, local_schedule_s: int) -> int:
    """How often the local scheduler fires a rule: the template's rate, or the local cap when shorter.

    AWS fires what the template says; only the local stack, whose demo fleet runs time-compressed,
    ticks more often (``FLEETOTA_LOCAL_SCHEDULE_S``; 0 keeps the template's rate).
    """
    return min(template_s, local_schedule_s) if local_schedule_s > 0 else template_s


def schedule_interval_seconds(expression: str) -> int:
    """Seconds between firings of a ``rate(...)`` expression.

    Raises
    ------
    ConfigurationError
        For ``cron(...)`` (the local scheduler fires rates only) or a malformed expression.
    """
    text = expression.strip()
    if text.startswith("cron("):
        raise ConfigurationError(
            f"the local scheduler supports rate(...) schedules only, not {text!r}; use a rate expression"
        )
    match = _RATE.match(text)
    if match is None:
        raise ConfigurationError(f"{text!r} is not a valid EventBridge rate expression, e.g. rate(1 minute)")
    value, unit = int(match.group(1)), match.group(2).rstrip("s")
    if value < 1:
        raise ConfigurationError(f"{text!r}: the rate must be at least 1")
    # AWS requires the singular unit for 1 and the plural otherwise.
    if (value == 1) != (match.group(2) == unit):
        raise ConfigurationError(f"{text!r}: use '{value} {unit if value == 1 else unit + 's'}'")
    return value * _UNIT_SECONDS[unit]
