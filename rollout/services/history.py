"""The metrics history behind the charts: ``GET /api/v1/flags/{key}/metrics``.

A range is read in one pipeline when it lies within the current stage (the default): the flag
comes from the caller's reader (the API's in-memory cache), and the audit moves that tell the
stage boundaries ride in the same pipeline as the packed 10-second or 5-minute history. A range
reaching back into earlier stages first needs those stages' epochs (their metrics are keyed by
them), so it reads the moves, then the data: two round trips.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from rollout.core.defaults import ROLLUP_SECONDS
from rollout.core.errors import ValidationError
from rollout.core.history import (
    WINDOW_SECONDS,
    StageSpan,
    check_step,
    default_step,
    memory_series,
    series,
    stages_from_audit,
    uses_rollups,
)
from rollout.core.model import Flag
from rollout.core.units import parse_duration, parse_instant, render_instant, to_ms
from rollout.storage.history import HistoryStore, Span

Clock = Callable[[], float]
_EPOCH_SECONDS = re.compile(r"^\s*\d{1,12}(?:\.\d{1,3})?\s*$")


def instant_param(value: str | None, field: str) -> int | None:
    """A query parameter's instant: ISO 8601 or epoch seconds (``1800000000``), as ms."""
    if value is None or not value.strip():
        return None
    if _EPOCH_SECONDS.fullmatch(value):
        return parse_instant(float(value), field)
    return parse_instant(value, field)


def _spans(stages: list[StageSpan], since: int, until: int) -> list[Span]:
    return [
        Span(
            epoch=stage.epoch,
            since=max(since, stage.started_at) // 1000,
            until=min(until, stage.ended_at if stage.ended_at is not None else until) // 1000,
        )
        for stage in stages
        if stage.overlaps(since, until)
    ]


class HistoryService:
    def __init__(
        self,
        store: HistoryStore,
        get_flag: Callable[[str], Flag],
        clock: Clock,
        windows_retention: float,
    ) -> None:
        self._store = store
        self.get_flag = get_flag
        self.clock = clock
        self.windows_retention_ms = int(windows_retention * 1000)

    def stages(self, key: str) -> list[StageSpan]:
        return stages_from_audit(self._store.moves(key))

    def metrics(
        self,
        key: str,
        *,
        since: str | None = None,
        until: str | None = None,
        step: str | None = None,
    ) -> dict[str, Any]:
        """Per step and arm over [since, until] (default: the current stage up to now)."""
        return self.metrics_of(self.get_flag(key), since=since, until=until, step=step)

    def metrics_of(
        self,
        flag: Flag,
        *,
        since: str | None = None,
        until: str | None = None,
        step: str | None = None,
    ) -> dict[str, Any]:
        key = flag.key
        now = to_ms(self.clock())
        until_ms = instant_param(until, "until") or now
        since_ms = instant_param(since, "since")
        if since_ms is None:
            since_ms = min(flag.stage_started_at or flag.created_at or now, until_ms)
        if since_ms > until_ms:
            raise ValidationError(f"is after until ({render_instant(until_ms)})", "since")
        windows_from = now - self.windows_retention_ms
        if step is None or not step.strip():
            finest = WINDOW_SECONDS if since_ms >= windows_from else ROLLUP_SECONDS
            step_s = default_step(since_ms, until_ms, finest)
        else:
            step_ms = parse_duration(step, "step")
            step_s = check_step(step_ms, since_ms, until_ms, windows_from_ms=windows_from)
        coarse = uses_rollups(step_s)
        epoch = flag.stage_started_at
        if epoch is not None and since_ms >= epoch:
            span = Span(epoch, since_ms // 1000, until_ms // 1000)
            found = self._store.read(key, [span], coarse=coarse, with_moves=True)
            stages = stages_from_audit(found.moves or [])
        else:
            stages = self.stages(key)
            spans = _spans(stages, since_ms, until_ms)
            found = self._store.read(key, spans, coarse=coarse, with_moves=False)
        return {
            "flag": flag.key,
            "step": step_s,
            "since": render_instant(since_ms),
            "until": render_instant(until_ms),
            "stages": [s.to_dict() for s in stages if s.overlaps(since_ms, until_ms)],
            "series": series(
                ((s.start, s.control, s.treatment) for s in found.spans),
                found.types,
                since_ms,
                until_ms,
                step_s,
                found.values,
            ),
            "memory_mb": memory_series(found.memory, since_ms, step_s),
        }
