"""The VIN check digit and validation, fast path included, against ISO 3779 written out one character
at a time: the same digit, the same verdict and the same message for valid and broken VINs."""

from __future__ import annotations

import random

import pytest

from fleetota_core.domain.vin import InvalidVINError, check_digit, is_valid_vin, validate_vin

VALUES = {**{str(d): d for d in range(10)}, **dict(zip("ABCDEFGHJKLMNPRSTUVWXYZ", [1, 2, 3, 4, 5, 6, 7, 8,
          1, 2, 3, 4, 5, 7, 9, 2, 3, 4, 5, 6, 7, 8, 9], strict=True))}  # fmt: skip
WEIGHTS = (8, 7, 6, 5, 4, 3, 2, 10, 0, 9, 8, 7, 6, 5, 4, 3, 2)
YEARS = "ABCDEFGHJKLMNPRSTVWXY123456789"


def reference_digit(vin: str) -> str:
    total = 0
    for position, char in enumerate(vin.upper()):
        if position != 8:
            if char not in VALUES:
                raise InvalidVINError(f"VIN character {char!r} at position {position + 1} is not allowed")
            total += VALUES[char] * WEIGHTS[position]
    return "X" if total % 11 == 10 else str(total % 11)


def reference_verdict(vin: str) -> str:
    if len(vin) != 17:
        return f"VIN must be {17} characters, got {len(vin)}"
    if set("IOQ") & set(vin):
        return f"VIN must not contain {', '.join(sorted(set('IOQ') & set(vin)))}"
    if any(c not in VALUES for c in vin):
        return "VIN must be upper-case letters and digits"
    if vin[9] not in YEARS:
        return f"VIN position 10 {vin[9]!r} is not a model-year code"
    if vin[8] != reference_digit(vin):
        return f"VIN check digit is {vin[8]!r}, expected {reference_digit(vin)!r}"
    return "valid"


def verdict(vin: str) -> str:
    try:
        return "valid" if validate_vin(vin) == vin else "changed"
    except InvalidVINError as exc:
        return str(exc)


def samples() -> list[str]:
    rng = random.Random(16)
    alphabet = "0123456789ABCDEFGHJKLMNPRSTUVWXYZ"
    out = []
    for _ in range(3000):
        vin = "".join(rng.choice(alphabet) for _ in range(17))
        out.append(vin[:8] + reference_digit(vin) + vin[9:])  # valid but for the year code, often
        out.append(vin)  # mostly a wrong check digit
    # Broken ones: forbidden letters, lower case, other characters, lengths; at the check digit too.
    base = out[0]
    for bad in ("I", "O", "Q", "a", "?", " ", "é"):
        out += [base[:p] + bad + base[p + 1 :] for p in range(17)]
    out += [base[:16], base + "1", "", "ß" * 17, base[:16] + "ß"]
    return out


@pytest.mark.parametrize("vin", [v for v in samples()[:40] + samples()[-130:] if len(v.upper()) == 17])
def test_the_check_digit_is_iso_3779s(vin: str) -> None:
    try:
        expected = reference_digit(vin)
    except InvalidVINError as exc:
        with pytest.raises(InvalidVINError, match="is not allowed") as raised:
            check_digit(vin)
        assert str(raised.value) == str(exc)
        return
    assert check_digit(vin) == expected


def test_six_thousand_vins_get_iso_3779s_verdict_and_message() -> None:
    vins = samples()
    assert [verdict(v) for v in vins] == [reference_verdict(v) for v in vins]
    assert [is_valid_vin(v) for v in vins] == [reference_verdict(v) == "valid" for v in vins]
    assert sum(verdict(v) == "valid" for v in vins) > 1500  # the valid path is exercised, not just errors
