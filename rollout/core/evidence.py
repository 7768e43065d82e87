"""The evidence a flag's gates are read from (DESIGN §4): what each arm recorded, merged exactly.

``storage.metrics`` builds it from Redis; ``core.gates`` judges it. Counts only: nothing here
decides.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from rollout.core import histogram


@dataclass(frozen=True, slots=True)
class ArmStats:
    """What one arm recorded over some span: outcomes, errors, latency histogram, exposures."""

    samples: int = 0
    errors: int = 0
    errors_by_type: Mapping[str, int] = field(default_factory=dict)
    latency: Mapping[int, int] = field(default_factory=dict)  # histogram bucket -> count
    exposures: int = 0

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
        )


@dataclass(frozen=True, slots=True)
class Arms:
    treatment: ArmStats = field(default_factory=ArmStats)
    control: ArmStats = field(default_factory=ArmStats)


@dataclass(frozen=True, slots=True)
class Evidence:
    """Everything the gates of one flag are read from, at one moment.

    ``stage`` counts from ``stage_started_at`` (or the revive); ``windows`` maps a gate's
    ``window_ms`` to the arms over that trailing window (a gate whose window is missing reads
    ``insufficient`` there). ``memory_mb`` is the highest growth reported by a process that
    served the treatment. ``baseline_p95_ms`` overrides ``Flag.baseline_p95_ms`` when given.
    """

    stage: Arms = field(default_factory=Arms)
    windows: Mapping[int, Arms] = field(default_factory=dict)
    memory_mb: float | None = None
    baseline_p95_ms: float | None = None
