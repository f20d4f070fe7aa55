"""A small IAM policy evaluator for the subset ``infra/template.yaml`` uses.

Identity-based policies only: explicit Deny wins, then any Allow, else the implicit deny.
Action/NotAction and Resource/NotResource with ``*``/``?`` wildcards, the policy variables
``${aws:PrincipalTag/...}`` (and ``${*}``, ``${?}``, ``${$}``), and the condition operators below.
Anything else (an unknown operator, a policy element we do not read) raises: no silent allow.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

_OPERATORS = {
    "StringEquals", "StringNotEquals", "StringEqualsIgnoreCase", "StringLike", "StringNotLike",
    "ArnEquals", "ArnLike", "Bool", "Null",
}  # fmt: skip
_STATEMENT_KEYS = {"Sid", "Effect", "Action", "NotAction", "Resource", "NotResource", "Condition"}
_VARIABLE = re.compile(r"\$\{([^}]+)\}")
_ESCAPES = {"*": "*", "?": "?", "$": "$"}


class PolicyError(ValueError):
    """A policy uses something this evaluator does not implement."""


@dataclass(frozen=True)
class Statement:
    sid: str
    effect: str  # "Allow" | "Deny"
    actions: tuple[str, ...] = ()
    not_actions: tuple[str, ...] = ()
    resources: tuple[str, ...] = ()
    not_resources: tuple[str, ...] = ()
    conditions: Mapping[str, Mapping[str, tuple[str, ...]]] = field(default_factory=dict)

    @classmethod
    def parse(cls, raw: Mapping[str, Any], index: int = 0) -> Statement:
        unknown = set(raw) - _STATEMENT_KEYS
        if unknown:
            raise PolicyError(f"statement {raw.get('Sid', index)!r} uses {sorted(unknown)}")
        if raw.get("Effect") not in ("Allow", "Deny"):
            raise PolicyError(f"statement {raw.get('Sid', index)!r} has Effect {raw.get('Effect')!r}")
        if ("Action" in raw) == ("NotAction" in raw) or ("Resource" in raw) == ("NotResource" in raw):
            raise PolicyError(
                f"statement {raw.get('Sid', index)!r} needs one of Action/NotAction and Resource/NotResource"
            )
        conditions = {
            operator: {key: _strings(values) for key, values in block.items()}
            for operator, block in (raw.get("Condition") or {}).items()
        }
        for operator in conditions:
            if operator.removesuffix("IfExists") not in _OPERATORS:
                raise PolicyError(f"condition operator {operator} is not supported")
        return cls(
            sid=str(raw.get("Sid", f"#{index}")),
            effect=raw["Effect"],
            actions=_strings(raw.get("Action")),
            not_actions=_strings(raw.get("NotAction")),
            resources=_strings(raw.get("Resource")),
            not_resources=_strings(raw.get("NotResource")),
            conditions=conditions,
        )


@dataclass(frozen=True)
class Request:
    """One authorisation question: may the principal do ``action`` on ``resource``?"""

    action: str
    resource: str
    context: Mapping[str, str] = field(default_factory=dict)  # condition keys, e.g. cloudwatch:namespace


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str  # "allowed by <sid>", "denied by <sid>" or "no statement allows it"
    allowed_by: tuple[str, ...] = ()


def _strings(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str | int | float | bool):
        return (str(value).lower() if isinstance(value, bool) else str(value),)
    if isinstance(value, Sequence):
        return tuple(str(v).lower() if isinstance(v, bool) else str(v) for v in value)
    raise PolicyError(f"expected a string or a list of strings, got {value!r}")


@lru_cache(maxsize=4096)
def _glob(pattern: str, case_sensitive: bool) -> re.Pattern[str]:
    parts = ("." + "*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.compile("".join(parts), 0 if case_sensitive else re.IGNORECASE | re.DOTALL)


def _match(pattern: str, value: str, *, case_sensitive: bool) -> bool:
    return _glob(pattern, case_sensitive).fullmatch(value) is not None


def substitute(pattern: str, principal_tags: Mapping[str, str]) -> str | None:
    """``pattern`` with its policy variables filled in; None if a variable has no value.

    A wildcard that comes from a tag value is matched literally, as IAM does.
    """
    missing = False

    def value(match: re.Match[str]) -> str:
        nonlocal missing
        name = match.group(1).strip()
        if name in _ESCAPES:
            return "\x00" + _ESCAPES[name]  # a literal character, not a wildcard
        if not name.lower().startswith("aws:principaltag/") or "," in name:
            raise PolicyError(f"policy variable ${{{name}}} is not supported")
        tag = name.split("/", 1)[1]
        if tag in principal_tags:
            return "".join("\x00" + c if c in "*?" else c for c in principal_tags[tag])
        missing = True
        return ""

    filled = _VARIABLE.sub(value, pattern)
    return None if missing else filled


def _resource_match(pattern: str, resource: str, tags: Mapping[str, str]) -> bool:
    filled = substitute(pattern, tags)
    if filled is None:
        return False
    # "\x00c" is a literal c: split it out of the glob.
    regex = ""
    chars = iter(filled)
    for c in chars:
        if c == "\x00":
            regex += re.escape(next(chars))
        elif c == "*":
            regex += ".*"
        elif c == "?":
            regex += "."
        else:
            regex += re.escape(c)
    return re.fullmatch(regex, resource, re.DOTALL) is not None


def _action_applies(statement: Statement, action: str) -> bool:
    if statement.actions:
        return any(_match(p, action, case_sensitive=False) for p in statement.actions)
    return not any(_match(p, action, case_sensitive=False) for p in statement.not_actions)


def _resource_applies(statement: Statement, resource: str, tags: Mapping[str, str]) -> bool:
    if statement.resources:
        return any(_resource_match(p, resource, tags) for p in statement.resources)
    return not any(_resource_match(p, resource, tags) for p in statement.not_resources)


def _condition_holds(
    operator: str, key: str, expected: tuple[str, ...], context: Mapping[str, str], tags: Mapping[str, str]
) -> bool:
    base, if_exists = (operator[:-8], True) if operator.endswith("IfExists") else (operator, False)
    actual = {k.lower(): v for k, v in context.items()}.get(key.lower())
    if key.lower().startswith("aws:principaltag/"):
        actual = tags.get(key.split("/", 1)[1])
    if base == "Null":
        return (actual is None) == (expected[0] == "true")
    if actual is None:
        return if_exists
    values = [v for v in (substitute(e, tags) for e in expected) if v is not None]
    if base in ("StringEquals", "ArnEquals", "Bool"):
        return actual in values
    if base == "StringEqualsIgnoreCase":
        return actual.lower() in (v.lower() for v in values)
    if base in ("StringLike", "ArnLike"):
        return any(_resource_match(v, actual, {}) for v in values)
    if base == "StringNotEquals":
        return actual not in values
    if base == "StringNotLike":
        return not any(_resource_match(v, actual, {}) for v in values)
    raise PolicyError(f"condition operator {operator} is not supported")


def _conditions_hold(statement: Statement, context: Mapping[str, str], tags: Mapping[str, str]) -> bool:
    return all(
        _condition_holds(operator, key, values, context, tags)
        for operator, block in statement.conditions.items()
        for key, values in block.items()
    )


def applies(statement: Statement, request: Request, principal_tags: Mapping[str, str]) -> bool:
    """Whether ``statement`` speaks about ``request`` (action, resource and conditions all match)."""
    return (
        _action_applies(statement, request.action)
        and _resource_applies(statement, request.resource, principal_tags)
        and _conditions_hold(statement, request.context, principal_tags)
    )


def evaluate(
    statements: Sequence[Statement], request: Request, principal_tags: Mapping[str, str] | None = None
) -> Decision:
    """IAM's rule for one principal's identity policies: explicit Deny, then Allow, else deny."""
    tags = principal_tags or {}
    matching = [s for s in statements if applies(s, request, tags)]
    denied = [s.sid for s in matching if s.effect == "Deny"]
    if denied:
        return Decision(False, f"denied by {', '.join(denied)}")
    allowed = tuple(s.sid for s in matching if s.effect == "Allow")
    if allowed:
        return Decision(True, f"allowed by {', '.join(allowed)}", allowed)
    return Decision(False, "no statement allows it")
