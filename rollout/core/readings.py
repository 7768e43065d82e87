"""What one gate reading is, and what one scope of the evidence offers a gate's reader.

``core.gates`` holds the registry of gate kinds and combines readings; the readers themselves
live in ``core.gate_outcomes`` (error rate, latency) and ``core.gate_values`` (business values).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from rollout.core.bounds import Moments
from rollout.core.evidence import ArmStats, WindowCounts


class Verdict(StrEnum):
    PASS = "pass"
    WARN = "warn"
    FAIL = "fail"
    INSUFFICIENT = "insufficient"


class Scope(StrEnum):
    WINDOW = "window"
    STAGE = "stage"


@dataclass(frozen=True, slots=True)
class Reading:
    """One gate over one scope. ``value`` is observed, ``bound`` the confidence bound judged."""

    metric: str
    verdict: Verdict
    value: float | None
    bound: float | None
    samples: int
    scope: Scope
    why: str
    control_value: float | None = None
    control_samples: int = 0


@dataclass(frozen=True, slots=True)
class Observed:
    """What one scope of the evidence offers a gate's reader.

    ``series`` (window scope only) is the look-back as 10-second windows, oldest first, each
    with its index since the stage began: the restart scan reads it (``bounds.regression``), and
    its oldest index says at which share of the window's error budget the look-back is judged.
    """

    treatment: ArmStats
    control: ArmStats | None
    memory_mb: float | None
    baseline_p95_ms: float | None
    scope: Scope
    series: Sequence[WindowCounts] = ()
    baseline_values: Mapping[str, Moments] = field(default_factory=dict)

    @property
    def first_window(self) -> int:
        """Index (since the stage began) of the look-back's oldest window; 0 for the stage."""
        return max(self.series[0].index, 0) if self.series else 0


def pct(rate: float) -> str:
    """0.061 -> '6.1%', 0.05 -> '5%'."""
    return f"{rate * 100:.1f}".rstrip("0").rstrip(".") + "%"


def ms(value: float | None) -> str:
    if value is None:
        return "n/a"
    return f"≤{value:.3g} ms" if value != math.inf else "> 10 min"
