"""Fixed, log-spaced latency buckets: histograms that merge exactly by adding counts.

Every process, every 10-second window and every arm uses the same bucket boundaries, so a
histogram of a whole stage is the plain sum of its windows' histograms and nothing is lost by
merging. A histogram is a sparse ``Mapping[int, int]`` from bucket index to count.

Buckets:
- bucket 0 holds every duration up to ``BASE_MS`` (0.1 ms), including 0 and clock-skew negatives;
- bucket ``i`` (1..``LAST``) holds ``(BASE_MS * GROWTH**(i-1), BASE_MS * GROWTH**i]``, with
  ``GROWTH = 2**(1/8)``, so eight buckets per doubling;
- bucket ``OVERFLOW`` holds everything above ``BASE_MS * GROWTH**LAST`` (about 10.8 minutes) and
  durations that are not a number, so they show up as slow instead of vanishing.

Resolution: a percentile is reported as the upper bound of the bucket that holds it, so it is never
below the true sample value and at most ``RESOLUTION`` (+9.05%) above it. A ratio of two such
percentiles is exact to within one bucket, a factor of ``GROWTH`` either way.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Iterable, Mapping

BASE_MS = 0.1
STEPS_PER_DOUBLING = 8
GROWTH: float = 2.0 ** (1.0 / STEPS_PER_DOUBLING)
# The smallest exponent whose upper bound reaches 10 minutes.
LAST = math.ceil(STEPS_PER_DOUBLING * math.log2(600_000.0 / BASE_MS))
OVERFLOW = LAST + 1
BUCKETS = OVERFLOW + 1
RESOLUTION: float = GROWTH - 1.0
"""Relative resolution: a reported percentile is exact to within +9.05% (never below the truth)."""

# Upper bounds are computed once and bucketing bisects this table, so every process assigns a
# duration on a boundary to the same bucket: no per-call log() whose rounding could differ.
_UPPER: tuple[float, ...] = tuple(
    BASE_MS * 2.0 ** (i / STEPS_PER_DOUBLING) for i in range(LAST + 1)
)


UPPER_BOUNDS = _UPPER
"""Bucket upper bounds: ``bisect_left(UPPER_BOUNDS, ms)`` is ``bucket_index`` for numbers (SDKs
inline it on their hot path)."""


def bucket_index(duration_ms: float) -> int:
    """The bucket holding ``duration_ms``: the first whose upper bound is at or above it."""
    if duration_ms != duration_ms:  # NaN compares false with everything; count it as off scale
        return OVERFLOW
    return bisect_left(_UPPER, duration_ms)  # len(_UPPER) == OVERFLOW for anything above LAST


def bucket_upper_ms(index: int) -> float:
    """Upper bound of a bucket in ms; ``math.inf`` for the overflow bucket."""
    if not 0 <= index <= OVERFLOW:
        raise ValueError(f"bucket index {index} is outside 0..{OVERFLOW}")
    return math.inf if index == OVERFLOW else _UPPER[index]


def total(counts: Mapping[int, int]) -> int:
    """Number of samples in a histogram (non-positive counts are ignored)."""
    return sum(c for c in counts.values() if c > 0)


def merge(histograms: Iterable[Mapping[int, int]]) -> dict[int, int]:
    """The exact sum of several histograms."""
    merged: dict[int, int] = {}
    for counts in histograms:
        for index, count in counts.items():
            if count > 0:
                merged[index] = merged.get(index, 0) + count
    return merged


def bucket_at_rank(counts: Mapping[int, int], rank: int) -> int | None:
    """The bucket holding the ``rank``-th smallest sample (1-based); None if there are fewer."""
    if rank < 1:
        raise ValueError(f"rank must be at least 1, got {rank}")
    seen = 0
    for index in sorted(i for i, c in counts.items() if c > 0):
        seen += counts[index]
        if seen >= rank:
            return index
    return None


def percentile(counts: Mapping[int, int], q: float) -> float | None:
    """Upper bound (ms) of the bucket holding the ``q``-quantile (0 ≤ q ≤ 1); None when empty.

    The quantile is the ``ceil(q * n)``-th smallest sample (at least the first), the usual
    nearest-rank definition, so p95 of 100 samples is the 95th.
    """
    if not 0.0 <= q <= 1.0:
        raise ValueError(f"q must be within 0..1, got {q}")
    n = total(counts)
    if n == 0:
        return None
    # The epsilon keeps float noise (0.95 * 100 may land a hair above 95) from skipping a rank.
    index = bucket_at_rank(counts, max(1, math.ceil(q * n - 1e-9)))
    assert index is not None  # rank ≤ n by construction
    return bucket_upper_ms(index)
