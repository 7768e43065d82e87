"""Validation of a flag's gates against the registry of gate kinds (``core.gates.GATE_KINDS``).

Each kind says which fields a plan may give beyond the common ones, whether its thresholds are
signed (business values: ordered by ``direction``), how high ``critical`` may go and how many
gates of the kind one flag may have (one per kind; up to 20 ``value:NAME`` gates).
"""

from __future__ import annotations

from typing import Any

from rollout.core.defaults import MAX_GATE_WINDOW_MS, MIN_GATE_WINDOW_MS
from rollout.core.errors import ValidationError
from rollout.core.gates import GATE_KINDS, gate_kind
from rollout.core.model import DIRECTIONS, HIGHER_IS_BETTER, LOWER_IS_BETTER, Gate
from rollout.core.parse import count, list_of, mapping, number
from rollout.core.units import format_duration, parse_duration, render_duration

GATE_FIELDS = ("metric", "warn", "critical", "min_samples", "window")
ALL_GATE_FIELDS = GATE_FIELDS + tuple(
    dict.fromkeys(f for kind in GATE_KINDS.values() for f in kind.extra_fields)
)
MAX_GATES = sum(kind.limit for kind in GATE_KINDS.values())


def _kinds_named() -> str:
    return ", ".join(f"{k}NAME" if k.endswith(":") else k for k in GATE_KINDS)


def parse_gates(value: object, field: str = "gates") -> tuple[Gate, ...]:
    gates: list[Gate] = []
    for i, raw in enumerate(list_of(value, field, MAX_GATES)):
        where = f"{field}[{i}]"
        item = mapping(raw, where, ALL_GATE_FIELDS)
        metric = str(item.get("metric"))
        kind = gate_kind(metric)
        if kind is None:
            raise ValidationError(f"must be one of {_kinds_named()}", f"{where}.metric")
        mapping(item, where, GATE_FIELDS + kind.extra_fields)
        if any(g.metric == metric for g in gates):
            raise ValidationError(f"{metric} appears twice", f"{where}.metric")
        if sum(gate_kind(g.metric) is kind for g in gates) >= kind.limit:
            raise ValidationError(f"at most {kind.limit} {kind.name} gates", f"{where}.metric")
        for name in ("warn", "critical"):
            if name not in item:
                raise ValidationError("is required", f"{where}.{name}")
        warn = number(item["warn"], f"{where}.warn")
        critical = number(item["critical"], f"{where}.critical")
        direction = item.get("direction", HIGHER_IS_BETTER)
        if direction not in DIRECTIONS:
            raise ValidationError(f"must be one of {', '.join(DIRECTIONS)}", f"{where}.direction")
        relative = item.get("relative", True)
        if not isinstance(relative, bool):
            raise ValidationError("must be true or false", f"{where}.relative")
        if kind.signed:
            if direction == HIGHER_IS_BETTER and critical > warn:
                raise ValidationError(
                    f"{metric}: with {HIGHER_IS_BETTER}, critical ({critical:g}) must be at or "
                    f"below warn ({warn:g}): a lower value is worse",
                    f"{where}.critical",
                )
            if direction == LOWER_IS_BETTER and critical < warn:
                raise ValidationError(
                    f"{metric}: with {LOWER_IS_BETTER}, critical ({critical:g}) must be at or "
                    f"above warn ({warn:g}): a higher value is worse",
                    f"{where}.critical",
                )
        else:
            if warn <= 0:
                raise ValidationError("must be above 0", f"{where}.warn")
            if critical < warn:
                raise ValidationError("must be at or above warn", f"{where}.critical")
        if kind.max_critical is not None and critical > kind.max_critical:
            raise ValidationError(kind.max_critical_why, f"{where}.critical")
        window = (
            parse_duration(item["window"], f"{where}.window")
            if "window" in item
            else kind.window_ms
        )
        if not MIN_GATE_WINDOW_MS <= window <= MAX_GATE_WINDOW_MS:
            # core.defaults says why a sliding window is bounded.
            span = f"{format_duration(MIN_GATE_WINDOW_MS)} to {format_duration(MAX_GATE_WINDOW_MS)}"
            raise ValidationError(f"must be from {span}", f"{where}.window")
        gates.append(
            Gate(
                metric=metric,
                warn=warn,
                critical=critical,
                min_samples=count(
                    item.get("min_samples", kind.min_samples), f"{where}.min_samples"
                ),
                window_ms=window,
                direction=str(direction),
                relative=relative,
            )
        )
    return tuple(gates)


def gate_to_dict(gate: Gate) -> dict[str, Any]:
    out: dict[str, Any] = {
        "metric": gate.metric,
        "warn": gate.warn,
        "critical": gate.critical,
        "min_samples": gate.min_samples,
        "window": render_duration(gate.window_ms),
    }
    kind = gate_kind(gate.metric)
    if kind is not None and "direction" in kind.extra_fields:
        out.update(direction=gate.direction, relative=gate.relative)
    return out
