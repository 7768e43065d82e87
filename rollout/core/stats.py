"""Per-look confidence bounds for the gates: pure functions, standard library only.

Since issue 10 these serve ``warn`` (z = 1, read afresh each look: a false warn only holds) and
the readings' observed points; ``fail`` judges the sequential bounds of ``core.bounds``, which
stay valid however often they are read. ``bench/decisions.py`` runs the old fixed-z rules
(Wilson at z = 2.5 / 4.75, pooled z at 3.5) beside the new ones as the baseline.

Error rates: the Wilson score interval.
    Gates judge the treatment's true error rate, not the observed one, by comparing the lower end
    of a confidence interval with the thresholds. The Wilson interval is used rather than the
    textbook normal ("Wald") interval because it stays inside 0..1 and keeps close to its nominal
    coverage at the small counts and rates near 0 that a young stage produces (the Wald interval
    collapses to zero width at 0 errors). It needs no iteration, which matters because the
    controller reads every gate of every flag every tick. Its lower end is somewhat liberal for
    small rates (at n = 100-200 and 10% the bound exceeds the truth up to ~1.7x as often as
    nominal, a discreteness effect); the gates' z values were tuned by simulation, which
    includes that.

Comparison with control: a one-sided pooled two-proportion z-test.
    ``fail`` additionally needs evidence that the treatment is worse than control, so errors that
    both arms share (a downstream outage) do not kill a flag. With the hundreds of samples a gate
    needs before it reads anything, the normal approximation is adequate; the test is
    deliberately simple and its threshold is chosen by the caller.

Latency: distribution-free order-statistic bounds on a quantile, from histogram counts.
    Among ``n`` samples, the number that fall below the true ``q``-quantile is Binomial(n, q). So
    the order statistic at rank ``floor(nq - z*sqrt(nq(1-q)))`` is at or below the true quantile
    with one-sided confidence about Phi(z), and the one at rank ``ceil(nq + z*sqrt(nq(1-q))) + 1``
    at or above it. This needs no assumption about the shape of the latency distribution (latency
    is skewed and multi-modal; a normal or log-normal model would be wrong in the tail that p95
    measures), no resampling (a bootstrap would cost thousands of passes per tick) and only the
    bucket counts that storage already keeps. The conservative bound on the ratio of two p95s is
    the lower bound of the treatment's p95 divided by the upper bound of control's. Both bounds are
    taken as their bucket's upper edge, so bucketing shifts the ratio by at most one bucket
    (``histogram.GROWTH``) rather than always against the treatment.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from rollout.core import histogram


def wilson_interval(successes: int, n: int, z: float) -> tuple[float, float]:
    """Wilson score interval ``(low, high)`` for a proportion; ``(0.0, 1.0)`` when n is 0.

    ``z`` applies to each end: with z = 2.326 the low end is a one-sided 99% lower bound.
    """
    if n < 0 or not 0 <= successes <= max(n, 0):
        raise ValueError(f"need 0 ≤ successes ≤ n, got successes={successes}, n={n}")
    if z < 0:
        raise ValueError(f"z must not be negative, got {z}")
    if n == 0:
        return (0.0, 1.0)
    p = successes / n
    z2 = z * z
    denominator = 1.0 + z2 / n
    centre = (p + z2 / (2 * n)) / denominator
    half = z * math.sqrt(p * (1.0 - p) / n + z2 / (4 * n * n)) / denominator
    # At 0 or n successes the exact end is 0 or 1; rounding must not push it past that.
    low = 0.0 if successes == 0 else max(0.0, centre - half)
    high = 1.0 if successes == n else min(1.0, centre + half)
    return (low, high)


def two_proportion_z(x_treatment: int, n_treatment: int, x_control: int, n_control: int) -> float:
    """z-score of the one-sided test "treatment rate > control rate" (pooled variance).

    Positive when the treatment looks worse. 0.0 when either arm is empty or the pooled rate is
    0 or 1 (both arms identical at the extreme: no evidence of a difference).
    """
    if n_treatment <= 0 or n_control <= 0:
        return 0.0
    pooled = (x_treatment + x_control) / (n_treatment + n_control)
    variance = pooled * (1.0 - pooled) * (1.0 / n_treatment + 1.0 / n_control)
    if variance <= 0.0:
        return 0.0
    return (x_treatment / n_treatment - x_control / n_control) / math.sqrt(variance)


def quantile_rank_bounds(n: int, q: float, z: float) -> tuple[int, int]:
    """1-based ranks ``(low, high)`` of order statistics bracketing the true ``q``-quantile.

    ``X(low)`` is at or below the true quantile, and ``X(high)`` at or above it, each with one-sided
    confidence about Phi(z). Ranks are clamped to 1..n: with few samples the bound is the sample
    minimum or maximum, whose confidence is what the data allow (1 - q**n for the maximum).
    """
    if n < 1:
        raise ValueError(f"need at least one sample, got n={n}")
    if not 0.0 < q < 1.0:
        raise ValueError(f"q must be strictly between 0 and 1, got {q}")
    mean = n * q
    spread = z * math.sqrt(n * q * (1.0 - q))
    low = math.floor(mean - spread + 1e-9)
    high = math.ceil(mean + spread - 1e-9) + 1
    return (min(max(low, 1), n), min(max(high, 1), n))


@dataclass(frozen=True, slots=True)
class QuantileBounds:
    """A quantile read from a histogram: bucket indices of its lower bound, point and upper bound.

    The point is the nearest-rank quantile; the bounds hold the true quantile with one-sided
    confidence Phi(z) each. Indices, not milliseconds, so ratios can be formed without the
    overflow bucket's infinite upper edge getting in the way.
    """

    low: int
    point: int
    high: int
    samples: int


def quantile_bounds(counts: Mapping[int, int], q: float, z: float) -> QuantileBounds | None:
    """Order-statistic bounds of the ``q``-quantile of a histogram; None when it is empty."""
    n = histogram.total(counts)
    if n == 0:
        return None
    low_rank, high_rank = quantile_rank_bounds(n, q, z)
    point_rank = max(1, math.ceil(q * n - 1e-9))
    low = histogram.bucket_at_rank(counts, low_rank)
    point = histogram.bucket_at_rank(counts, point_rank)
    high = histogram.bucket_at_rank(counts, high_rank)
    assert low is not None and point is not None and high is not None  # ranks are within 1..n
    return QuantileBounds(low=low, point=point, high=high, samples=n)


def bucket_ratio(numerator: int, denominator: int) -> float:
    """Ratio of two buckets' upper edges. The overflow bucket counts as one step above the last,
    so the ratio stays finite; latencies past ~10 minutes are clipped."""
    return float(2.0 ** ((numerator - denominator) / histogram.STEPS_PER_DOUBLING))


def bucket_value_ms(index: int) -> float:
    """A bucket's upper edge, with the overflow bucket one step above the last finite edge."""
    if index == histogram.OVERFLOW:
        return histogram.bucket_upper_ms(histogram.LAST) * histogram.GROWTH
    return histogram.bucket_upper_ms(index)
