"""Every flag's recent treatment error rate in one answer: the sparklines of the dashboard list.

One call for the whole list, so a page of 200 flags makes one request, not 200. Each flag's
points come from the same history reads as its charts (5-minute rollups of its current stage),
on one time axis shared by every flag, so the page draws each line without aligning anything.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rollout.core.defaults import ROLLUP_SECONDS, TREND_SPAN
from rollout.core.model import Flag
from rollout.core.units import parse_instant, render_instant
from rollout.services.history import HistoryService


def trends(history: HistoryService, flags: Sequence[Flag], now_ms: int) -> dict[str, Any]:
    step = ROLLUP_SECONDS
    first = (now_ms // 1000 - TREND_SPAN) // step
    count = now_ms // 1000 // step - first + 1
    since_ms = first * step * 1000
    out: dict[str, dict[str, list[Any]]] = {}
    for flag in flags:
        samples: list[int] = [0] * count
        rates: list[float | None] = [None] * count
        epoch = flag.stage_started_at
        if epoch is not None and epoch <= now_ms:
            found = history.metrics_of(
                flag,
                since=render_instant(max(since_ms, epoch)),
                until=render_instant(now_ms),
                step=f"{step}s",
            )
            for point in found["series"]["treatment"]:
                at = parse_instant(point["at"], "at") or 0
                index = at // 1000 // step - first
                if 0 <= index < count:
                    samples[index] = point["samples"]
                    rates[index] = point["error_rate"]
        out[flag.key] = {"samples": samples, "error_rate": rates}
    return {
        "step": step,
        "at": [render_instant((first + i) * step * 1000) for i in range(count)],
        "flags": out,
    }
