"""Parsing and rendering of percentages, durations and instants.

Percentages are integer basis points inside (0..10000): floats never reach storage, so
12.5% is exactly 1250 and never 1249.9999. Durations are integer milliseconds; instants are
integer epoch milliseconds, which makes snapshot round trips exact.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation

from rollout.core.errors import ValidationError

BP_PER_PERCENT = 100
MAX_BP = 10_000

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNIT_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, None: 1000}


_PERCENT_TEXT = re.compile(r"\s*[+-]?[0-9]+(?:\.[0-9]+)?\s*")
_TWO_PLACES = Decimal("0.01")


def _decimal(value: object, field: str) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, int | float | str | Decimal):
        raise ValidationError("must be a number", field)
    if isinstance(value, str) and not _PERCENT_TEXT.fullmatch(value):
        # Plain ASCII decimals only: no exponents, underscores, other scripts' digits, NaN.
        raise ValidationError(f"{value!r} is not a number like 12.5", field)
    try:
        # str() of a float is its shortest repr, so 12.5 stays 12.5 and 0.1 stays 0.1.
        number = Decimal(value) if isinstance(value, Decimal) else Decimal(str(value).strip())
    except InvalidOperation:
        raise ValidationError(f"{value!r} is not a number", field) from None
    if not number.is_finite():
        raise ValidationError("must be a finite number", field)
    return number


def parse_percent(value: object, field: str = "percent") -> int:
    """A percentage from 0 to 100 with at most two decimals, as basis points. Never rounds."""
    number = _decimal(value, field)
    if number < 0 or number > 100:
        raise ValidationError(f"{value} is out of range 0..100", field)
    if number.quantize(_TWO_PLACES) != number:
        raise ValidationError(f"{value} has more than two decimals", field)
    return int(number * BP_PER_PERCENT)


def render_percent(bp: int) -> int | float:
    """Basis points as the percentage people read: 1250 -> 12.5, 5000 -> 50."""
    return bp // BP_PER_PERCENT if bp % BP_PER_PERCENT == 0 else bp / BP_PER_PERCENT


def parse_duration(value: object, field: str = "duration") -> int:
    """``"500ms"``, ``"90s"``, ``"15m"``, ``"36h"``, ``"3d"`` or seconds, as milliseconds."""
    if isinstance(value, bool):
        raise ValidationError("must be a duration such as '90s' or a number of seconds", field)
    if isinstance(value, int | float | Decimal):
        number = Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
        if not number.is_finite() or number < 0:
            raise ValidationError(f"{value!r} is not a valid duration", field)
        if number > 10 * 365 * 86_400:
            raise ValidationError(f"{value!r} is longer than ten years", field)
        ms = number * 1000
    elif isinstance(value, str):
        match = _DURATION.fullmatch(value)
        if not match:
            raise ValidationError(
                f"{value!r} is not a duration (use e.g. '500ms', '90s', '15m', '36h', '3d')", field
            )
        ms = Decimal(match.group(1)) * _UNIT_MS[match.group(2)]
    else:
        raise ValidationError("must be a duration such as '90s' or a number of seconds", field)
    if ms != ms.to_integral_value():
        raise ValidationError(f"{value!r} is finer than a millisecond", field)
    if ms > 10 * 365 * 86_400_000:
        raise ValidationError(f"{value!r} is longer than ten years", field)
    return int(ms)


def render_duration(ms: int) -> int | float:
    """Milliseconds as seconds, the unit every output uses."""
    return ms // 1000 if ms % 1000 == 0 else ms / 1000


def format_duration(ms: int) -> str:
    """A short human form for tables: 90000 -> '90s', 259200000 -> '3d'."""
    for unit, size in (("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1000)):
        if ms >= size and ms % size == 0:
            return f"{ms // size}{unit}"
    return f"{ms}ms"


def to_ms(seconds: float) -> int:
    """A clock reading (epoch seconds) as integer epoch milliseconds."""
    return round(seconds * 1000)


def render_instant(ms: int | None) -> str | None:
    """Epoch milliseconds as ISO 8601 UTC with millisecond precision (exact round trip)."""
    if ms is None:
        return None
    instant = datetime.fromtimestamp(ms // 1000, tz=UTC).replace(microsecond=(ms % 1000) * 1000)
    return instant.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


MAX_INSTANT_MS = 253_402_300_799_999  # 9999-12-31T23:59:59.999Z, the last ISO 8601 can write


def parse_instant(value: object, field: str) -> int | None:
    """Inverse of ``render_instant``; also takes epoch seconds as a number. 1970 to 9999."""
    if value is None:
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        if not 0 <= value <= MAX_INSTANT_MS / 1000:
            raise ValidationError(f"{value!r} is not a time between 1970 and 9999", field)
        return to_ms(float(value))
    if not isinstance(value, str):
        raise ValidationError("must be an ISO 8601 time", field)
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ValidationError(f"{value!r} is not an ISO 8601 time", field) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    ms = int(parsed.timestamp()) * 1000 + parsed.microsecond // 1000
    if not 0 <= ms <= MAX_INSTANT_MS:
        raise ValidationError(f"{value!r} is not a time between 1970 and 9999", field)
    return ms
