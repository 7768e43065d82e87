"""Metrics history (DESIGN §6): stage boundaries from the audit, time steps, per-step series.

Pure: storage hands in audit moves and per-span arm counts, this module decides which stages a
range covers, how fine its steps may be, and what each step says. Instants are epoch
milliseconds, steps and spans seconds.
"""

from __future__ import annotations

import math
import time
from bisect import bisect_left
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from itertools import accumulate
from typing import Any

from rollout.core import histogram
from rollout.core.bounds import Moments
from rollout.core.defaults import MAX_HISTORY_STEPS, ROLLUP_SECONDS
from rollout.core.errors import RolloutError, ValidationError
from rollout.core.evidence import chan
from rollout.core.transitions import SERVING
from rollout.core.units import parse_instant, parse_percent, render_instant, render_percent

WINDOW_SECONDS = 10
"""The finest step: one 10-second metrics window."""

STEP_LADDER = (10, 20, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400)
"""Default steps, finest first: round numbers a chart's axis can label."""

SERVING_STATES = frozenset(str(state) for state in SERVING)
QUANTILES = (0.5, 0.95, 0.99)

# Audit actions that can start or end a stage; the others (update, pause, resume) never move
# stage_started_at, so their before/after documents need not even be decoded.
STAGE_ACTIONS = frozenset(
    {"create", "set", "advance", "rollback", "complete", "kill", "revive", "restore", "delete"}
)


@dataclass(frozen=True, slots=True)
class AuditMove:
    """One audit entry that may move a stage: who, what, when, and the flag before and after."""

    action: str
    actor: str
    at: int
    reason: str | None
    before: Mapping[str, Any] | None
    after: Mapping[str, Any] | None


@dataclass(frozen=True, slots=True)
class StageSpan:
    """A stage as the audit tells it. ``epoch`` keys its metrics (its ``stage_started_at``)."""

    epoch: int
    percent_bp: int
    state: str
    stage: int | None
    started_at: int
    ended_at: int | None = None
    ended_by: str | None = None
    ended_actor: str | None = None
    ended_reason: str | None = None

    def overlaps(self, since: int, until: int) -> bool:
        return self.started_at <= until and (self.ended_at is None or self.ended_at > since)

    def to_dict(self) -> dict[str, Any]:
        return {
            "percent": render_percent(self.percent_bp),
            "started_at": render_instant(self.started_at),
            "ended_at": render_instant(self.ended_at),
            "ended_by": self.ended_by,
        }


def ended_by(move: AuditMove) -> str:
    """The move that ended a stage: the audit action, with a completing advance as complete."""
    after = move.after
    if move.action == "advance" and after is not None and after.get("state") == "complete":
        return "complete"
    return move.action


def serving_epoch(doc: Mapping[str, Any] | None) -> int | None:
    """The stage epoch a flag document serves on, or None (draft, killed, deleted)."""
    if doc is None or doc.get("state") not in SERVING_STATES:
        return None
    try:
        return parse_instant(doc.get("stage_started_at"), "stage_started_at")
    except RolloutError:
        return None


def _span(doc: Mapping[str, Any], epoch: int) -> StageSpan:
    try:
        percent_bp = parse_percent(doc.get("percent", 0))
    except RolloutError:
        percent_bp = 0
    stage = doc.get("stage")
    return StageSpan(
        epoch=epoch,
        percent_bp=percent_bp,
        state=str(doc.get("state")),
        stage=stage if isinstance(stage, int) and not isinstance(stage, bool) else None,
        started_at=epoch,
    )


def stages_from_audit(moves: Iterable[AuditMove]) -> list[StageSpan]:
    """Every stage of the flag's current life, oldest first, from its audit moves.

    A stage is a span with one ``stage_started_at`` while the flag serves users; it ends when a
    move gives the flag another epoch or stops it serving (kill, rollback to draft, delete). A
    create (or a restore that creates) starts a new life: stages of a deleted namesake are
    dropped. A stream trimmed of its oldest entries starts from the first entry's ``before``.
    """
    stages: list[StageSpan] = []
    current: StageSpan | None = None
    first = True
    for move in moves:
        if first and move.before is not None:
            epoch = serving_epoch(move.before)
            current = None if epoch is None else _span(move.before, epoch)
        first = False
        if move.before is None:  # a new life of this key
            stages, current = [], None
        epoch = serving_epoch(move.after)
        if current is not None and epoch != current.epoch:
            stages.append(
                replace(
                    current,
                    ended_at=max(move.at, current.started_at),
                    ended_by=ended_by(move),
                    ended_actor=move.actor,
                    ended_reason=move.reason,
                )
            )
            current = None
        if epoch is not None and current is None and move.after is not None:
            current = _span(move.after, epoch)
    if current is not None:
        stages.append(current)
    return stages


# -- steps -----------------------------------------------------------------------------------


def step_count(since_ms: int, until_ms: int, step: int) -> int:
    """Steps of ``step`` seconds, aligned to the epoch, that cover [since, until]."""
    return (until_ms // 1000) // step - (since_ms // 1000) // step + 1


def default_step(since_ms: int, until_ms: int, finest: int) -> int:
    """The finest ladder step at or above ``finest`` that keeps to ``MAX_HISTORY_STEPS``."""
    for step in STEP_LADDER:
        if step >= finest and step_count(since_ms, until_ms, step) <= MAX_HISTORY_STEPS:
            return step
    days = math.ceil((until_ms - since_ms) / 1000 / 86400 / (MAX_HISTORY_STEPS - 1))
    return 86400 * max(days, 1)


def check_step(step_ms: int, since_ms: int, until_ms: int, *, windows_from_ms: int) -> int:
    """An explicit step (ms) as seconds, or a ValidationError naming ``step``.

    Steps are whole multiples of 10 seconds. Those that are not multiples of 5 minutes are
    read from the 10-second history, which only goes back ``ROLLOUT_METRICS_RETENTION``: a
    range reaching further needs a step of 5m or a multiple of it.
    """
    if step_ms <= 0 or step_ms % (WINDOW_SECONDS * 1000):
        raise ValidationError("must be a positive multiple of 10s (e.g. 10s, 5m, 1h)", "step")
    step = step_ms // 1000
    count = step_count(since_ms, until_ms, step)
    if count > MAX_HISTORY_STEPS:
        raise ValidationError(
            f"gives {count} steps over this range, more than {MAX_HISTORY_STEPS}; "
            "use a coarser step or a shorter range",
            "step",
        )
    if step % ROLLUP_SECONDS and since_ms < windows_from_ms:
        raise ValidationError(
            "steps finer than 5m (or not a multiple of it) come from the 10-second windows, "
            f"kept only since {render_instant(windows_from_ms)}; use a multiple of 5m here",
            "step",
        )
    return step


def uses_rollups(step: int) -> bool:
    return step % ROLLUP_SECONDS == 0


# -- series ----------------------------------------------------------------------------------

Dense = Sequence[int]
"""An arm's counters over a span: samples, errors, exposures, then each latency bucket's count
(the packed history's layout, ``storage/rollups.py``)."""


def _sum(parts: list[Dense]) -> Dense:
    if len(parts) == 1:
        return parts[0]
    total = [0] * max(len(p) for p in parts)
    for part in parts:
        for index, count in enumerate(part):
            if count:
                total[index] += count
    return total


# Each bucket's upper bound, the overflow bucket's as None: +inf cannot travel in JSON.
_UPPER: tuple[float | None, ...] = (*histogram.UPPER_BOUNDS, None)


def dense_quantiles(latency: Dense, qs: Sequence[float] = QUANTILES) -> list[float | None]:
    """Nearest-rank quantiles of a dense histogram (``histogram.percentile``, all at once)."""
    cumulative = list(accumulate(latency))
    n = cumulative[-1] if cumulative else 0
    if n <= 0:
        return [None] * len(qs)
    return [_UPPER[bisect_left(cumulative, max(1, math.ceil(q * n - 1e-9)))] for q in qs]


def _at(seconds: int) -> str:
    # Steps start on whole seconds: render_instant's form without its per-call datetime.
    return time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(seconds))


def point(
    at: str, counts: Dense, by_type: Mapping[str, int], values: Mapping[str, Moments]
) -> dict[str, Any]:
    """One step of one arm as the API renders it; ``values``: each business value's
    ``{"n", "mean"}`` in the step."""
    samples, errors, exposures = (*counts[:3], 0, 0, 0)[:3]
    p50, p95, p99 = dense_quantiles(counts[3:])
    return {
        "at": at,
        "samples": samples,
        "errors": errors,
        "error_rate": errors / samples if samples else None,
        "errors_by_type": dict(by_type),
        "p50_ms": p50,
        "p95_ms": p95,
        "p99_ms": p99,
        "exposures": exposures,
        "values": {name: {"n": m.n, "mean": m.mean} for name, m in sorted(values.items())},
    }


def series(
    spans: Iterable[tuple[int, Dense, Dense]],
    types: Mapping[tuple[int, str], Mapping[str, int]],
    since_ms: int,
    until_ms: int,
    step: int,
    values: Mapping[tuple[int, str], Mapping[str, Moments]] | None = None,
) -> dict[str, list[dict[str, Any]]]:
    """Per-arm points for every step in [since, until], empty steps included (charts need
    the gaps). ``spans``: (start in seconds, control, treatment); ``types``: errors by type
    and ``values``: business values' moments, per (span start, arm). Spans of one step merge
    exactly (counts add, moments by Chan's formula)."""
    first = (since_ms // 1000) // step
    count = step_count(since_ms, until_ms, step)
    parts: dict[int, tuple[list[Dense], list[Dense]]] = {}
    for start, control, treatment in spans:
        index = start // step - first
        if 0 <= index < count:
            found = parts.setdefault(index, ([], []))
            found[0].append(control)
            found[1].append(treatment)
    typed: dict[tuple[int, str], dict[str, int]] = {}
    for (start, arm), by_type in types.items():
        index = start // step - first
        merged = typed.setdefault((index, arm), {})
        for name, n in by_type.items():
            merged[name] = merged.get(name, 0) + n
    observed: dict[tuple[int, str], dict[str, Moments]] = {}
    for (start, arm), moments in (values or {}).items():
        index = start // step - first
        held = observed.setdefault((index, arm), {})
        for name, m in moments.items():
            held[name] = chan((held[name], m)) if name in held else m
    out: dict[str, list[dict[str, Any]]] = {"treatment": [], "control": []}
    nothing: dict[str, int] = {}
    none: dict[str, Moments] = {}
    for index in range(count):
        at = _at((first + index) * step)
        control_parts, treatment_parts = parts.get(index, ([], []))
        for arm, arm_parts in (("treatment", treatment_parts), ("control", control_parts)):
            counts = _sum(arm_parts) if arm_parts else ()
            where = (index, arm)
            out[arm].append(point(at, counts, typed.get(where, nothing), observed.get(where, none)))
    return out


def memory_series(
    reports: Iterable[tuple[int, float]], since_ms: int, step: int
) -> list[dict[str, Any]]:
    """The highest memory growth per step, for the steps that have a report (seconds in)."""
    first = (since_ms // 1000) // step
    highest: dict[int, float] = {}
    for start, megabytes in reports:
        index = start // step
        if index >= first:
            highest[index] = max(megabytes, highest.get(index, megabytes))
    return [{"at": _at(index * step), "max": highest[index]} for index in sorted(highest)]
