"""ISO 3779 / FMVSS 565 VIN rules: alphabet, check digit (position 9) and model-year code (position 10)."""

from __future__ import annotations

from functools import lru_cache
from operator import getitem

VIN_LENGTH = 17
FORBIDDEN = frozenset("IOQ")
_TRANSLITERATION = {
    **{str(d): d for d in range(10)},
    **dict(zip("ABCDEFGH", range(1, 9), strict=True)),
    **dict(zip("JKLMN", range(1, 6), strict=True)),
    "P": 7,
    "R": 9,
    **dict(zip("STUVWXYZ", range(2, 10), strict=True)),
}
_WEIGHTS = (8, 7, 6, 5, 4, 3, 2, 10, 0, 9, 8, 7, 6, 5, 4, 3, 2)
# Position 10 cycles every 30 years; U, Z and 0 are never used, nor I, O, Q.
YEAR_CODES = "ABCDEFGHJKLMNPRSTVWXY123456789"
_FIRST_CYCLE_START = 1980

# Real world manufacturer identifiers for the makes the simulator builds.
WMI_BY_MAKE: dict[str, tuple[str, ...]] = {
    "Tesla": ("5YJ", "7SA"),
    "Ford": ("1FA", "1FM"),
    "Rivian": ("7PD",),
    "Volkswagen": ("WVW", "WVG"),
    "BMW": ("WBA", "WBY"),
    "Hyundai": ("KMH", "KM8"),
    "Kia": ("KNA", "KND"),
    "Volvo": ("YV1", "YV4"),
    "Polestar": ("LPS",),
    "Nissan": ("1N4", "JN1"),
}
MAKE_BY_WMI = {wmi: make for make, wmis in WMI_BY_MAKE.items() for wmi in wmis}


class InvalidVINError(ValueError):
    """The VIN breaks a rule; the message names which one."""


# Per position but 9 (the check digit's own), each allowed character's value times the weight: a
# targeting read checks 1,000,000 VINs, too many for validate_vin's cache, so each check counts.
_WEIGHED = tuple({c: v * w for c, v in _TRANSLITERATION.items()} for w in _WEIGHTS[:8] + _WEIGHTS[9:])
_ALLOWED = frozenset(_TRANSLITERATION)
_WEIGHED_ALL = (*_WEIGHED[:8], dict.fromkeys(_ALLOWED, 0), *_WEIGHED[8:])  # position 9 weighs 0


def check_digit(vin: str) -> str:
    """The check digit (``0``-``9`` or ``X``) that position 9 of ``vin`` must hold."""
    upper = vin.upper()
    weighed = upper[:8] + upper[9:]
    if len(upper) == VIN_LENGTH and _ALLOWED.issuperset(weighed):
        remainder = sum(map(getitem, _WEIGHED, weighed)) % 11
        return "X" if remainder == 10 else str(remainder)
    total = 0  # the same sum, one character at a time, to name a character that is not allowed
    for position, char in enumerate(upper):
        if position == 8:
            continue
        try:
            total += _TRANSLITERATION[char] * _WEIGHTS[position]
        except KeyError as exc:
            raise InvalidVINError(
                f"VIN character {char!r} at position {position + 1} is not allowed"
            ) from exc
    remainder = total % 11
    return "X" if remainder == 10 else str(remainder)


def year_code(model_year: int) -> str:
    """The position-10 code for a model year (1980-2039)."""
    offset = model_year - _FIRST_CYCLE_START
    if not 0 <= offset < 2 * len(YEAR_CODES):
        raise InvalidVINError(f"model year {model_year} is outside 1980-2039")
    return YEAR_CODES[offset % len(YEAR_CODES)]


def model_years(code: str) -> tuple[int, int]:
    """The two model years (30 years apart) a position-10 code can stand for."""
    index = YEAR_CODES.find(code)
    if index < 0:
        raise InvalidVINError(f"{code!r} is not a model-year code")
    return _FIRST_CYCLE_START + index, _FIRST_CYCLE_START + index + len(YEAR_CODES)


def with_check_digit(vin: str) -> str:
    """``vin`` with position 9 replaced by its correct check digit."""
    return vin[:8] + check_digit(vin) + vin[9:]


def is_valid_vin(vin: str) -> bool:
    """Whether :func:`validate_vin` accepts ``vin``, uncached: for reads of a whole fleet, whose
    million VINs would only push the telemetry path's VINs out of the cache."""
    if len(vin) != VIN_LENGTH or not _ALLOWED.issuperset(vin) or vin[9] not in YEAR_CODES:
        return False
    # check_digit's sum for a VIN already known to be upper case and of allowed characters.
    remainder = sum(map(getitem, _WEIGHED_ALL, vin)) % 11
    return vin[8] == ("X" if remainder == 10 else str(remainder))


@lru_cache(maxsize=262_144)
def validate_vin(vin: str) -> str:
    """Return ``vin`` if valid, else raise :class:`InvalidVINError` naming the broken rule.

    Cached because a fleet sends the same VINs over and over on the telemetry hot path.
    """
    if is_valid_vin(vin):
        return vin  # the checks below run to name what a bad VIN breaks
    if len(vin) != VIN_LENGTH:
        raise InvalidVINError(f"VIN must be {VIN_LENGTH} characters, got {len(vin)}")
    forbidden = FORBIDDEN.intersection(vin)
    if forbidden:
        raise InvalidVINError(f"VIN must not contain {', '.join(sorted(forbidden))}")
    if any(char not in _TRANSLITERATION for char in vin):
        raise InvalidVINError("VIN must be upper-case letters and digits")
    if vin[9] not in YEAR_CODES:
        raise InvalidVINError(f"VIN position 10 {vin[9]!r} is not a model-year code")
    expected = check_digit(vin)
    if vin[8] != expected:
        raise InvalidVINError(f"VIN check digit is {vin[8]!r}, expected {expected!r}")
    return vin
