"""Targeting rules on context attributes (DESIGN §2.1): checked once, matched without regexes.

A rule is ``{attribute, op, values, serve}``. ``match`` gives the ``serve`` of the first rule
that matches the caller's attributes, or ``None`` when none does (evaluation goes on to the
bucket). Matching never raises for odd input and never uses a regular expression (no ReDoS):
only ``==``, set membership, ``str.startswith``/``endswith``/``in`` and number comparisons.

- ``in``/``not_in`` take a list of strings, numbers or booleans; the string operators take a
  list of strings and match any of them; comparisons and semver take exactly one value.
- Strings match case-sensitively. Numbers compare as numbers (``1 == 1.0``); booleans are not
  numbers, and a value of another type than the operator's never matches: a string is not
  ``gt`` anything, a number does not ``ends_with`` (``not_in`` takes any scalar).
- A missing attribute (absent, or ``None``) never matches, ``not_in`` included; nor does a
  value that is not a string, number or boolean (the SDK reports such values via ``report``).
- Semver is ``MAJOR[.MINOR[.PATCH]][-prerelease][+build]`` with an optional leading ``v``;
  missing parts are 0, prerelease orders as SemVer 2.0 says and build metadata is ignored.

Rule values are parsed when a ``Rule`` is built (a flag decoded or compiled), never per call.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from rollout.core.defaults import (
    MAX_ATTRIBUTES,
    MAX_RULE_TEXT,
    MAX_RULE_VALUES,
    MAX_RULES,
    MAX_TEXT,
)
from rollout.core.errors import ValidationError

Value = str | int | float | bool
Test = Callable[[object], bool]
Report = Callable[[str, object], None]  # (attribute, value) of a value that is no scalar
# The comparable form of a version: (major, minor, patch, release?, prerelease identifiers).
SemverKey = tuple[int, int, int, int, tuple[tuple[int, int, str], ...]]

SCALARS = (str, int, float, bool)
RULE_FIELDS = ("attribute", "op", "values", "serve")
MAX_ATTRIBUTE = 64
MAX_SEMVER = 256  # characters of a version string; longer is no version
MAX_SEMVER_DIGITS = 18  # per numeric part: keeps int() cheap and every key a machine word


class Op(StrEnum):
    IN = "in"
    NOT_IN = "not_in"
    STARTS_WITH = "starts_with"
    ENDS_WITH = "ends_with"
    CONTAINS = "contains"
    LT = "lt"
    LTE = "lte"
    GT = "gt"
    GTE = "gte"
    SEMVER_LT = "semver_lt"
    SEMVER_GTE = "semver_gte"


STRING_OPS = frozenset({Op.STARTS_WITH, Op.ENDS_WITH, Op.CONTAINS})
NUMBER_OPS = frozenset({Op.LT, Op.LTE, Op.GT, Op.GTE})
SEMVER_OPS = frozenset({Op.SEMVER_LT, Op.SEMVER_GTE})
SINGLE_VALUE_OPS = NUMBER_OPS | SEMVER_OPS


@dataclass(frozen=True, slots=True)
class Rule:
    attribute: str
    op: Op
    values: tuple[Value, ...]
    serve: bool
    # The matcher, built once from the values; not part of the rule's identity.
    test: Test = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "test", matcher(self))


# -- versions --------------------------------------------------------------------------------


def _digits(text: str) -> bool:
    return 0 < len(text) <= MAX_SEMVER_DIGITS and text.isascii() and text.isdigit()


def _identifier(text: str) -> bool:
    return bool(text) and text.isascii() and all(c.isalnum() or c == "-" for c in text)


def parse_semver(text: object) -> SemverKey | None:
    """The comparable key of a version string, or ``None`` when it is not one."""
    if not isinstance(text, str) or len(text) > MAX_SEMVER:
        return None
    if text[:1] in ("v", "V"):
        text = text[1:]
    text, plus, build = text.partition("+")
    if plus and not all(_identifier(part) for part in build.split(".")):
        return None
    core, dash, pre = text.partition("-")
    parts = core.split(".")
    if len(parts) > 3 or not all(_digits(part) for part in parts):
        return None
    numbers = [int(part) for part in parts] + [0] * (3 - len(parts))
    if not dash:
        return (numbers[0], numbers[1], numbers[2], 1, ())
    identifiers = pre.split(".")
    if not all(_identifier(part) for part in identifiers):
        return None
    # SemVer 2.0 §11: numeric identifiers compare as numbers and sort before alphanumeric ones;
    # a shorter list that is a prefix of a longer one sorts first; a release beats a prerelease.
    ids = tuple((0, int(part), "") if part.isdigit() else (1, 0, part) for part in identifiers)
    return (numbers[0], numbers[1], numbers[2], 0, ids)


_SEMVER_MEMO: dict[str, SemverKey | None] = {}
_SEMVER_MEMO_SIZE = 4096  # versions in the wild are few; a full memo simply starts over


def _semver_of(text: str) -> SemverKey | None:
    """``parse_semver`` of an attribute, memoised: callers send the same few versions."""
    if type(text) is not str:  # a subclass may redefine ==; never let it into the memo
        return parse_semver(str(text))
    try:
        return _SEMVER_MEMO[text]
    except KeyError:
        pass
    key = parse_semver(text)
    if len(_SEMVER_MEMO) >= _SEMVER_MEMO_SIZE:
        _SEMVER_MEMO.clear()
    _SEMVER_MEMO[text] = key
    return key


# -- matching --------------------------------------------------------------------------------


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def matcher(rule: Rule, report: Report | None = None) -> Test:
    """The rule's test of one attribute value (never ``None``); ``report`` hears of non-scalars.

    Each test takes its operand type's branch first; the fallback, for a value of another
    type, is where ``report`` is called, so well-typed callers pay nothing for it.
    """
    op, name, values = rule.op, rule.attribute, rule.values

    def other(value: object) -> bool:
        if report is not None and not isinstance(value, SCALARS):
            report(name, value)
        return False

    if op is Op.IN or op is Op.NOT_IN:
        strings = frozenset(v for v in values if isinstance(v, str))
        booleans = frozenset(v for v in values if isinstance(v, bool))
        numbers = frozenset(v for v in values if _is_number(v))
        inside = op is Op.IN

        def member(value: object) -> bool:
            if isinstance(value, str):
                return (value in strings) is inside
            if isinstance(value, bool):
                return (value in booleans) is inside
            if isinstance(value, int | float):
                return (value in numbers) is inside
            return other(value)

        return member
    if op in STRING_OPS:
        texts = tuple(str(v) for v in values)
        if op is Op.STARTS_WITH:

            def starts(value: object) -> bool:
                return value.startswith(texts) if isinstance(value, str) else other(value)

            return starts
        if op is Op.ENDS_WITH:

            def ends(value: object) -> bool:
                return value.endswith(texts) if isinstance(value, str) else other(value)

            return ends

        def contains(value: object) -> bool:
            if isinstance(value, str):
                return any(text in value for text in texts)
            return other(value)

        return contains
    if op in NUMBER_OPS:
        return _comparison(op, values[0], other)
    key = parse_semver(values[0])
    if key is None:
        raise ValueError(f"{values[0]!r} is not a version")
    below = op is Op.SEMVER_LT

    def semver(value: object) -> bool:
        if isinstance(value, str):
            found = _semver_of(value)
            return found is not None and (found < key) is below
        return other(value)

    return semver


def _comparison(op: Op, bound: Value, other: Test) -> Test:
    if not _is_number(bound):
        raise ValueError(f"{bound!r} is not a number")
    x: float = bound  # type: ignore[assignment]

    if op is Op.LT:

        def test(value: object) -> bool:
            return value < x if _is_number(value) else other(value)  # type: ignore[operator]

    elif op is Op.LTE:

        def test(value: object) -> bool:
            return value <= x if _is_number(value) else other(value)  # type: ignore[operator]

    elif op is Op.GT:

        def test(value: object) -> bool:
            return value > x if _is_number(value) else other(value)  # type: ignore[operator]

    else:

        def test(value: object) -> bool:
            return value >= x if _is_number(value) else other(value)  # type: ignore[operator]

    return test


def match(rules: Sequence[Rule], attributes: Mapping[str, object] | None) -> bool | None:
    """The ``serve`` of the first rule the attributes match; ``None`` when none does."""
    if not rules or not attributes or not isinstance(attributes, Mapping):
        return None
    for rule in rules:
        value = attributes.get(rule.attribute)
        if value is not None and rule.test(value):
            return rule.serve
    return None


# -- validation ------------------------------------------------------------------------------


def valid_attribute(name: object) -> bool:
    """``^[A-Za-z_][A-Za-z0-9_.-]{0,63}$``, checked without a regular expression."""
    return (
        isinstance(name, str)
        and 0 < len(name) <= MAX_ATTRIBUTE
        and name.isascii()
        and (name[0].isalpha() or name[0] == "_")
        and all(c.isalnum() or c in "_.-" for c in name)
    )


def _text(value: object, where: str) -> str:
    if not isinstance(value, str):
        raise ValidationError("must be a string", where)
    if not value:
        raise ValidationError("must not be empty", where)
    if len(value) > MAX_RULE_TEXT:
        raise ValidationError(f"is longer than {MAX_RULE_TEXT} characters", where)
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValidationError("is not valid Unicode text", where) from None
    if any(ord(c) < 32 or 127 <= ord(c) <= 159 for c in value):
        raise ValidationError("must not contain control characters", where)
    return value


def _number(value: object, where: str) -> int | float:
    if not _is_number(value):
        raise ValidationError("must be a number", where)
    number: int | float = value  # type: ignore[assignment]
    if isinstance(number, float) and (number != number or number in (float("inf"), -float("inf"))):
        raise ValidationError("must be a finite number", where)
    if isinstance(number, int) and abs(number) > 2**63:
        raise ValidationError("is too large", where)
    return int(number) if isinstance(number, int) else float(number)


def _value(op: Op, value: object, where: str) -> Value:
    if op in STRING_OPS:
        return _text(value, where)
    if op in NUMBER_OPS:
        return _number(value, where)
    if op in SEMVER_OPS:
        text = _text(value, where)
        if parse_semver(text) is None:
            raise ValidationError(f"{text!r} is not a version like 1.4.2 or 2.0.0-beta.1", where)
        return text
    if isinstance(value, bool):
        return value
    if _is_number(value):
        return _number(value, where)
    if isinstance(value, str):
        return _text(value, where)
    raise ValidationError("must be a string, a number or true/false", where)


def parse_rule(raw: object, where: str) -> Rule:
    if not isinstance(raw, Mapping):
        raise ValidationError("must be an object", where)
    unknown = sorted(str(k) for k in set(raw) - set(RULE_FIELDS))
    if unknown:
        raise ValidationError(
            f"unknown field {unknown[0]!r} (allowed: {', '.join(RULE_FIELDS)})", where
        )
    for name in RULE_FIELDS:
        if name not in raw:
            raise ValidationError("is required", f"{where}.{name}")
    attribute = raw["attribute"]
    if not valid_attribute(attribute):
        raise ValidationError(
            f"{attribute!r} is not an attribute name (a letter or _, then up to 63 of "
            "A-Z a-z 0-9 _ . -)",
            f"{where}.attribute",
        )
    try:
        op = Op(raw["op"]) if isinstance(raw["op"], str) else None
    except ValueError:
        op = None
    if op is None:
        raise ValidationError(f"must be one of {', '.join(o.value for o in Op)}", f"{where}.op")
    values = raw["values"]
    if not isinstance(values, list | tuple):
        raise ValidationError("must be a list", f"{where}.values")
    if op in SINGLE_VALUE_OPS and len(values) != 1:
        raise ValidationError(f"{op} takes exactly one value", f"{where}.values")
    if not values:
        raise ValidationError("must hold at least one value", f"{where}.values")
    if len(values) > MAX_RULE_VALUES:
        raise ValidationError(f"has more than {MAX_RULE_VALUES} entries", f"{where}.values")
    parsed = tuple(_value(op, v, f"{where}.values[{i}]") for i, v in enumerate(values))
    serve = raw["serve"]
    if serve not in ("on", "off") or not isinstance(serve, str):
        raise ValidationError('must be "on" or "off"', f"{where}.serve")
    return Rule(attribute=str(attribute), op=op, values=parsed, serve=serve == "on")


def parse_rules(value: object, field: str = "rules") -> tuple[Rule, ...]:
    """An ordered rule list from its external form; refuses naming the field (``rules[2].op``)."""
    if not isinstance(value, list | tuple):
        raise ValidationError("must be a list", field)
    if len(value) > MAX_RULES:
        raise ValidationError(f"has more than {MAX_RULES} entries", field)
    return tuple(parse_rule(raw, f"{field}[{i}]") for i, raw in enumerate(value))


def parse_context(value: object, field: str = "attr") -> dict[str, Value]:
    """Context attributes an operator typed (``check --attr``, ``evaluate?attr.NAME=``).

    Stricter than the SDK, which ignores what it cannot use: here a bad name or a value that is
    no string, number or boolean is refused, naming it (``attr.email``); ``None`` is dropped,
    as the SDK treats it (a missing attribute).
    """
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ValidationError("must be an object of attributes", field)
    if len(value) > MAX_ATTRIBUTES:
        raise ValidationError(f"has more than {MAX_ATTRIBUTES} attributes", field)
    context: dict[str, Value] = {}
    for name, raw in value.items():
        where = f"{field}.{name}"
        if not valid_attribute(name):
            raise ValidationError(
                "is not an attribute name (a letter or _, then up to 63 of A-Z a-z 0-9 _ . -)",
                where,
            )
        if raw is None:
            continue
        if isinstance(raw, str):
            if len(raw) > MAX_TEXT:
                raise ValidationError(f"is longer than {MAX_TEXT} characters", where)
            context[name] = raw
        elif isinstance(raw, bool):
            context[name] = raw
        elif _is_number(raw):
            context[name] = _number(raw, where)
        else:
            raise ValidationError("must be a string, a number or true/false", where)
    return context


def rule_to_dict(rule: Rule) -> dict[str, Any]:
    return {
        "attribute": rule.attribute,
        "op": str(rule.op),
        "values": list(rule.values),
        "serve": "on" if rule.serve else "off",
    }
