"""Small strict parsers shared by ``schema`` and ``gate_schema``: each raises a
``ValidationError`` naming the field."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

from rollout.core.errors import ValidationError

MAX_COUNT = 10**12


def count(value: object, field: str) -> int:
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # JSON's 306.0 is the integer 306 (JSON Schema says so too)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValidationError("must be a whole number >= 0", field)
    if value > MAX_COUNT:
        raise ValidationError(f"must be at most {MAX_COUNT}", field)
    return value


def number(value: object, field: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        raise ValidationError("must be a number", field)
    try:
        result = float(value)
    except OverflowError:
        raise ValidationError("is too large", field) from None
    if result != result or result in (float("inf"), float("-inf")):
        raise ValidationError("must be a finite number", field)
    return result


def mapping(value: object, field: str, allowed: Sequence[str]) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ValidationError("must be an object", field)
    unknown = sorted(set(value) - set(allowed))
    if unknown:
        raise ValidationError(
            f"unknown field {unknown[0]!r} (allowed: {', '.join(allowed)})", field or None
        )
    return value


def list_of(value: object, field: str, limit: int) -> list[Any]:
    if not isinstance(value, list | tuple):
        raise ValidationError("must be a list", field)
    if len(value) > limit:
        raise ValidationError(f"has more than {limit} entries", field)
    return list(value)
