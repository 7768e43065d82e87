"""Every flag's recent treatment error rate in one answer: the sparklines of the dashboard list.

One call for the whole list, so a page of 200 flags makes one request, not 200, and the server
one Redis round trip (``storage.trends``). The points are the 5-minute rollups the charts read,
of each flag's current stage, on one time axis shared by every flag, so the page draws each
line without aligning anything.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from rollout.core.defaults import ROLLUP_SECONDS, TREND_SPAN
from rollout.core.model import Flag
from rollout.core.units import render_instant, to_ms
from rollout.storage.trends import TrendStore


class TrendService:
    def __init__(
        self, store: TrendStore, flags: Callable[[], Iterable[Flag]], clock: Callable[[], float]
    ) -> None:
        self._store = store
        self._flags = flags  # FlagReads.flags: held in memory when synced, else from Redis
        self.clock = clock

    def trends(self) -> dict[str, Any]:
        step = ROLLUP_SECONDS
        now = to_ms(self.clock()) // 1000
        first = (now - TREND_SPAN) // step
        count = now // step - first + 1
        held = sorted(self._flags(), key=lambda f: f.key)
        staged = [f for f in held if f.stage_started_at is not None]
        rows = self._store.read([(f.key, f.stage_started_at or 0) for f in staged], first, count)
        out: dict[str, dict[str, list[Any]]] = {
            f.key: {"samples": [0] * count, "error_rate": [None] * count} for f in held
        }
        for flag, row in zip(staged, rows, strict=True):
            out[flag.key] = {
                "samples": [samples for samples, _ in row],
                "error_rate": [errors / samples if samples else None for samples, errors in row],
            }
        return {
            "step": step,
            "at": [render_instant((first + i) * step * 1000) for i in range(count)],
            "flags": out,
        }
