"""Latency and business-value parts of bench/decisions.py (same stage, same looks).

Latency is lognormal with sigma 0.5 around a control median of 20 ms; the treatment is the control
times the ratio. Samples land in ``core.histogram``'s buckets, and the rules read p95 bounds from
the bucket counts exactly as the gates do.

A false latency kill over a whole stage needs two things at one look: the treatment's p95 low
bound at least 5 buckets above control's p95 high bound (2^(5/8) = 1.54 >= 1.5x). "Low bound at or
above bucket k" is a boundary on one count (samples above edge k-1) and "high bound at or below
m" on another (control samples at or below edge m), so each is a one-dimensional crossing that
``_stagesim`` simulates exactly over all 259,200 looks. The two arms are independent, so the
chance that some look kills is at most the sum over the bucket pairs that matter of the product
of the two crossing chances; the bench reports that sum, an upper bound of the false-kill rate.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.special import betaln
from scipy.stats import norm

from bench import _stagesim as sim
from rollout.core import bounds, histogram, sequential, stats
from rollout.core.sequential import normal_mixture_radius, tuning_for

SIGMA, MEDIAN_MS, CRITICAL_RATIO, MIN_TIMED = 0.5, 20.0, 1.5, 100
GAP = math.ceil(histogram.STEPS_PER_DOUBLING * math.log2(CRITICAL_RATIO) - 1e-9)  # 5 buckets
EDGES = np.array(histogram.UPPER_BOUNDS)
Q, FIXED_Z = bounds.QUANTILE, 2.5
LEVEL = math.log(1 / bounds.LATENCY_ALPHA)
PA, PB = bounds.CDF_PRIOR.a, bounds.CDF_PRIOR.b


def cdf(edge_ms: float, ratio: float) -> float:
    return float(norm.cdf((math.log(edge_ms) - math.log(MEDIAN_MS * ratio)) / SIGMA))


def _rejected(cum: np.ndarray, n: np.ndarray) -> np.ndarray:
    """Evidence against "the CDF at this edge is q", per cell (``sequential.log_mixture``)."""
    c = cum.astype(np.float64)
    m = n.astype(np.float64)
    lm = betaln(PA + c, PB + m - c) - betaln(PA, PB) - c * math.log(Q) - (m - c) * math.log1p(-Q)
    return lm >= LEVEL


def new_buckets(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``bounds.p95_buckets`` for each row of a (runs, buckets) count array: (low, high)."""
    cum = np.cumsum(counts, axis=1)
    n = cum[:, -1:]
    reaches = cum >= Q * n
    rejected = _rejected(cum, np.broadcast_to(n, cum.shape))
    low = np.argmax(reaches | ~rejected, axis=1)
    high_hit = reaches & rejected
    high = np.where(high_hit.any(axis=1), np.argmax(high_hit, axis=1), counts.shape[1] - 1)
    return low, high


def fixed_buckets(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``stats.quantile_bounds`` (order-statistic ranks at z) for each row: (low, high)."""
    cum = np.cumsum(counts, axis=1)
    n = cum[:, -1]
    spread = FIXED_Z * np.sqrt(n * Q * (1 - Q))
    low_rank = np.clip(np.floor(n * Q - spread + 1e-9), 1, n)
    high_rank = np.clip(np.ceil(n * Q + spread - 1e-9) + 1, 1, n)
    low = np.argmax(cum >= low_rank[:, None], axis=1)
    high = np.argmax(cum >= high_rank[:, None], axis=1)
    return low, high


def timed_samples_to_kill(
    rng: np.random.Generator, runs: int, ratio: float, per_tick: int, ticks: int
) -> dict[str, np.ndarray]:
    buckets = histogram.BUCKETS
    t = np.zeros((runs, buckets), dtype=np.int64)
    c = np.zeros((runs, buckets), dtype=np.int64)
    result = {"new": np.full(runs, np.inf), "fixed": np.full(runs, np.inf)}
    rows = np.arange(runs)
    for tick in range(ticks):
        for counts, factor, size in ((t, ratio, per_tick), (c, 1.0, 9 * per_tick)):
            ms = MEDIAN_MS * factor * np.exp(SIGMA * rng.standard_normal((runs, size)))
            np.add.at(counts, (np.repeat(rows, size), np.searchsorted(EDGES, ms.ravel())), 1)
        n = per_tick * (tick + 1)
        if n < MIN_TIMED:
            continue
        for name, read in (("new", new_buckets), ("fixed", fixed_buckets)):
            low_t, _ = read(t)
            _, high_c = read(c)
            killed = (low_t - high_c >= GAP) & np.isinf(result[name])
            result[name][killed] = n
    return result


def _evidence(x: np.ndarray, n: np.ndarray) -> np.ndarray:
    """Evidence against "the CDF at this edge is q" (``sequential.log_mixture`` over arrays)."""
    return sim.log_mixture(x, n, Q, PA, PB)


def _scalar_evidence(x: int, n: int) -> float:
    return sequential.log_mixture(x, n, Q, bounds.CDF_PRIOR)


def _boundary(per_tick: int, side: str, rule: str) -> np.ndarray:
    """Fewest "successes" per second at which one arm's bound passes its bucket edge.

    ``low``: the treatment's low bound rises past an edge; successes are samples above it.
    ``high``: control's high bound falls to an edge; successes are samples at or below it.
    """
    arm_per_tick = per_tick if side == "low" else 9 * per_tick
    trials = arm_per_tick * np.arange(1, sim.TICKS + 1)
    if rule == "fixed":  # order-statistic ranks: a closed form, checked against core's below
        spread = FIXED_Z * np.sqrt(trials * Q * (1 - Q))
        if side == "low":
            low_rank = np.clip(np.floor(trials * Q - spread + 1e-9), 1, trials).astype(np.int64)
            out = trials - low_rank + 1  # fewer than low_rank at or below the edge
        else:
            out = np.clip(np.ceil(trials * Q + spread - 1e-9) + 1, 1, trials).astype(np.int64)
        for i in (MIN_TIMED, 10_000, sim.TICKS - 1):
            ranks = stats.quantile_rank_bounds(int(trials[i]), Q, FIXED_Z)
            expected = trials[i] - ranks[0] + 1 if side == "low" else ranks[1]
            assert out[i] == expected
        return np.where(trials >= MIN_TIMED, out, sim.SENTINEL)
    if side == "low":

        def fires_low(i: int, s: int, n: int) -> bool:
            below = n - s
            return n >= MIN_TIMED and below < Q * n and _scalar_evidence(below, n) >= LEVEL

        return sim.boundary(
            lambda s, n: _evidence(n - s, n), LEVEL, trials, 1 - Q, MIN_TIMED, fires_low
        )

    def fires_high(i: int, x: int, n: int) -> bool:
        return n >= MIN_TIMED and x >= Q * n and _scalar_evidence(x, n) >= LEVEL

    return sim.boundary(_evidence, LEVEL, trials, Q, MIN_TIMED, fires_high)


def false_kill_bound(
    rng: np.random.Generator, runs: int, ratio: float, per_tick: int, rule: str
) -> tuple[float, float]:
    """(estimate, 95%-bound-based) upper bounds of the false-kill rate over a whole stage."""
    control_p95 = int(np.searchsorted(EDGES, MEDIAN_MS * math.exp(SIGMA * norm.ppf(Q))))
    low_boundary = _boundary(per_tick, "low", rule)
    high_boundary = _boundary(per_tick, "high", rule)
    estimate = bound = 0.0
    for m in range(control_p95 - 3, control_p95 + 2):
        above = 1.0 - cdf(EDGES[m + GAP - 1], ratio)  # treatment low bound >= m + GAP
        below = cdf(EDGES[m], 1.0)  # control high bound <= m
        a = sim.stage_and_scan(rng, runs, per_tick, above, low_boundary, None, None)
        if a.fired == 0:  # the pair cannot beat a's own bound: control's side counts as 1
            bound += a.upper95()
            continue
        b = sim.stage_and_scan(rng, runs, 9 * per_tick, below, high_boundary, None, None)
        estimate += a.rate * b.rate
        bound += a.upper95() * b.upper95()
    return estimate, bound


# -- business values ---------------------------------------------------------------------------

VALUE_SIGMA, CONTROL_MEAN = 0.5, 1.0


def values_to_kill(
    rng: np.random.Generator, runs: int, drop: float, critical: float, per_tick: int, ticks: int
) -> np.ndarray:
    """Treatment observations at the first look whose relative change is shown below critical.

    Seconds are drawn in blocks: each second's sum and sum of squares per arm (their exact joint
    law for normal data: a normal sum and a chi-square spread), accumulated along the block, so
    every second is a look while the work is array-wide.
    """
    t_mean = CONTROL_MEAN * (1 - drop)
    totals = {arm: [np.zeros((runs, 1)), np.zeros((runs, 1))] for arm in ("t", "c")}
    killed = np.full(runs, np.inf)
    block = 1_000
    tuning = tuning_for(critical, bounds.VALUE_ALPHA)
    for first in range(0, ticks, block):
        width = min(block, ticks - first)
        sums = {}
        for arm, mean, size in (("t", t_mean, per_tick), ("c", CONTROL_MEAN, 9 * per_tick)):
            s1 = size * mean + VALUE_SIGMA * math.sqrt(size) * rng.standard_normal((runs, width))
            spread = VALUE_SIGMA**2 * rng.chisquare(size - 1, (runs, width)) if size > 1 else 0.0
            s2 = spread + s1**2 / size
            c1 = totals[arm][0] + np.cumsum(s1, axis=1)
            c2 = totals[arm][1] + np.cumsum(s2, axis=1)
            totals[arm] = [c1[:, -1:], c2[:, -1:]]
            n = size * (first + 1 + np.arange(width))[None, :]
            mean_ = c1 / n
            sums[arm] = (n, mean_, np.maximum(c2 - c1 * mean_, 0.0))
        (nt, mt, m2t), (nc, mc, m2c) = sums["t"], sums["c"]
        with np.errstate(divide="ignore", invalid="ignore"):
            var_t = m2t / (nt - 1) / nt
            var_c = m2c / (nc - 1) / nc
            scale = np.abs(mc)
            variance = var_t / scale**2 + mt**2 * var_c / scale**4
            high = (mt - mc) / scale + radius(variance, tuning)
        hit = (high <= -critical) & (nt >= MIN_TIMED)
        first_hit = np.where(hit.any(axis=1), nt[0][np.argmax(hit, axis=1)], np.inf)
        killed = np.minimum(killed, first_hit)
    return killed


def radius(variance: np.ndarray, tuning: float) -> np.ndarray:
    """``sequential.normal_mixture_radius`` over an array (checked against it in the bench)."""
    alpha = bounds.VALUE_ALPHA
    information = 1.0 / variance
    spread = (information + tuning) * np.log((information + tuning) / (tuning * alpha * alpha))
    return np.sqrt(spread) / information


def check_radius() -> None:
    tuning = tuning_for(0.05, bounds.VALUE_ALPHA)
    for v in (1e-2, 1e-4, 1e-6):
        mine = float(radius(np.array([v]), tuning)[0])
        assert abs(mine - normal_mixture_radius(v, bounds.VALUE_ALPHA, tuning)) < 1e-12


def value_false_kills(
    rng: np.random.Generator, runs: int, drop: float, critical: float, per_tick: int
) -> sim.Crossings:
    """Runs killed at some look of a whole stage (every second) at a true ``drop``."""
    killed = values_to_kill(rng, runs, drop, critical, per_tick, sim.TICKS)
    return sim.Crossings(runs, int(np.isfinite(killed).sum()))
