"""The evidence a flag's gates are read from (DESIGN §4): what each arm recorded, merged exactly.

``storage.metrics`` builds it from Redis; ``core.gates`` judges it. Counts only: nothing here
decides.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from rollout.core import histogram
from rollout.core.bounds import Moments


def chan(parts: Iterable[Moments]) -> Moments:
    """Count, mean and M2 of several sets of observations together (Chan et al.'s pairwise
    update): exact up to float rounding, unlike adding means or sums of squares."""
    n, mean, m2 = 0, 0.0, 0.0
    for part in parts:
        if part.n <= 0:
            continue
        total = n + part.n
        delta = part.mean - mean
        mean += delta * (part.n / total)
        m2 += part.m2 + delta * delta * (n * part.n / total)
        n = total
    return Moments(n, mean, m2)


@dataclass(frozen=True, slots=True)
class ArmStats:
    """What one arm recorded over some span: outcomes, errors, latency histogram, exposures."""

    samples: int = 0
    errors: int = 0
    errors_by_type: Mapping[str, int] = field(default_factory=dict)
    latency: Mapping[int, int] = field(default_factory=dict)  # histogram bucket -> count
    exposures: int = 0
    values: Mapping[str, Moments] = field(default_factory=dict)  # business values by name

    @staticmethod
    def merge(parts: Iterable[ArmStats]) -> ArmStats:
        """Exact sum of several spans or processes (histograms share their buckets)."""
        parts = list(parts)
        by_type: dict[str, int] = {}
        for part in parts:
            for name, count in part.errors_by_type.items():
                by_type[name] = by_type.get(name, 0) + count
        return ArmStats(
            samples=sum(p.samples for p in parts),
            errors=sum(p.errors for p in parts),
            errors_by_type=by_type,
            latency=histogram.merge(p.latency for p in parts),
            exposures=sum(p.exposures for p in parts),
            values={
                name: chan(p.values[name] for p in parts if name in p.values)
                for name in {name for p in parts for name in p.values}
            },
        )


@dataclass(frozen=True, slots=True)
class Arms:
    treatment: ArmStats = field(default_factory=ArmStats)
    control: ArmStats = field(default_factory=ArmStats)


@dataclass(frozen=True, slots=True)
class WindowCounts:
    """One 10-second window of a look-back: its index since the stage began, and both arms."""

    index: int
    treatment: ArmStats = field(default_factory=ArmStats)
    control: ArmStats = field(default_factory=ArmStats)


@dataclass(frozen=True, slots=True)
class Evidence:
    """Everything the gates of one flag are read from, at one moment.

    ``stage`` counts from ``stage_started_at`` (or the revive); ``windows`` maps a gate's
    ``window_ms`` to the arms over that trailing window (a gate whose window is missing reads
    ``insufficient`` there). ``memory_mb`` is the highest growth reported by a process that
    served the treatment. ``baseline_p95_ms`` overrides ``Flag.baseline_p95_ms`` when given.
    ``window_series`` maps a ``window_ms`` to the same look-back as 10-second windows, oldest
    first (the restart scan's input); without it a window counts as one starting with the stage.
    """

    stage: Arms = field(default_factory=Arms)
    windows: Mapping[int, Arms] = field(default_factory=dict)
    memory_mb: float | None = None
    baseline_p95_ms: float | None = None
    window_series: Mapping[int, Sequence[WindowCounts]] = field(default_factory=dict)
