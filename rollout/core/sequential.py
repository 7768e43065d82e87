"""Confidence bounds that stay valid however often they are read (DESIGN §4.2).

The controller reads every gate every second: a 3-day stage is 259,200 looks. A fixed-z bound read
that often turns noise into kills, because the chance that *some* look crosses grows with the number
of looks. Every bound here is instead a *confidence sequence*: the chance that the true value ever
leaves it, at any look over any horizon, is at most ``alpha``. All of them come from one argument
(Ville's inequality): a nonnegative martingale that starts at 1 exceeds ``1/alpha`` with probability
at most ``alpha``, ever.

Proportions (error rates, the CDF behind a quantile, an arm's share): the beta-binomial mixture.
    For a hypothesised rate ``p``, the likelihood ratio of a Beta(a, b) mixture of alternatives
    against ``p`` is a martingale under ``p``:
    ``M_n(p) = B(a + x, b + n - x) / B(a, b) / (p^x (1 - p)^(n - x))``.
    The set ``{p : M_n(p) < 1/alpha}`` is an interval (``log M`` is convex in ``p``) that holds the
    true rate at every ``n`` with probability ``1 - alpha``. A one-sided use (``low >= critical``)
    is then a test of "rate <= critical" whose false alarms over the whole stage are at most
    ``alpha``, whatever rate at or below critical is true. The prior is where power is spent: a
    Beta centred on twice the critical rate (``BetaPrior``) makes the bound tightest where a kill
    must be fast (bench/decisions.py: a true 20% against critical 10% is killed after a median
    of ~100 samples at alpha 1%), while the mixture keeps power against every rate above critical
    (a simple SPRT against 2x critical would almost never kill a true 12%). Closed form up to
    ``lgamma``; the interval ends are found by bisection (60 halvings: 1e-18 wide).

Quantiles (latency p95): the same bound on the CDF at a bucket edge. If the true ``q``-quantile
    were below a histogram edge whose count bound says "fewer than q of samples are here", the
    CDF's bound would have failed at the true quantile itself; as the count bound is monotone in
    the edge, one bound at one (unknown) point covers every edge, with no union over buckets.

Means (business values): Robbins' normal mixture over the estimate's information ``I = 1/var``:
    ``P(exists n: |S| >= sqrt((I + r) log((I + r) / (r alpha^2)))) <= alpha`` for a Gaussian
    sum ``S`` with variance ``I``. With plug-in variances it is an asymptotic confidence sequence
    (Waudby-Smith et al., 2021), accurate at the thousands of observations a value gate needs.
    ``r`` tunes where the bound is tightest: the information at which the critical effect
    becomes detectable.

Sudden regressions (the window reading): a scan over start points. After a long healthy stretch the
    stage's bound has drifted far from critical and reacts slowly. The window reading restarts the
    test at every 10-second window boundary ``j`` within its look-back and kills when any restarted
    test crosses its own threshold ``log(1/alpha_j)``. Each restarted test is a martingale from its
    start, so the stage's false alarms are at most ``sum_j alpha_j``; with
    ``alpha_j = alpha / (2 (j + 1) (1 + ln(j + 1))^2)`` that sum is below ``alpha`` for any stage
    length (the series converges: ``1 + integral dx / (x (1 + ln x)^2) = 2``). Thresholds grow only
    like ``2 ln j``: 20.5 nats after 48 h at alpha 0.5%, which a 30% error rate crosses in about 15
    seconds at 10 samples/s. The state is recomputed each tick from the windows of the look-back,
    so it survives a change of leader without being stored.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

_HALVINGS = 60


@dataclass(frozen=True, slots=True)
class BetaPrior:
    """Beta(mean * size, (1 - mean) * size): where the mixture spends its power."""

    mean: float
    size: float

    def __post_init__(self) -> None:
        if not 0.0 < self.mean < 1.0 or not self.size > 0.0:
            raise ValueError(f"need 0 < mean < 1 and size > 0, got {self.mean}, {self.size}")

    @property
    def a(self) -> float:
        return self.mean * self.size

    @property
    def b(self) -> float:
        return (1.0 - self.mean) * self.size


def log_beta(a: float, b: float) -> float:
    return math.lgamma(a) + math.lgamma(b) - math.lgamma(a + b)


def _check_counts(x: int, n: int) -> None:
    if n < 0 or not 0 <= x <= n:
        raise ValueError(f"need 0 <= x <= n, got x={x}, n={n}")


def log_mixture(x: int, n: int, p: float, prior: BetaPrior) -> float:
    """``log M_n(p)``: evidence (in nats) against the rate ``p`` after ``x`` of ``n``."""
    _check_counts(x, n)
    if n == 0:
        return 0.0
    if p <= 0.0:
        return math.inf if x > 0 else _log_mixture_tail(x, n, prior, 0.0)
    if p >= 1.0:
        return math.inf if x < n else _log_mixture_tail(x, n, prior, 1.0)
    mixed = log_beta(prior.a + x, prior.b + n - x) - log_beta(prior.a, prior.b)
    return mixed - x * math.log(p) - (n - x) * math.log1p(-p)


def _log_mixture_tail(x: int, n: int, prior: BetaPrior, p: float) -> float:
    # At p = 0 with no successes (or p = 1 with all), p^x (1-p)^(n-x) = 1.
    return log_beta(prior.a + x, prior.b + n - x) - log_beta(prior.a, prior.b)


def proportion_bounds(x: int, n: int, alpha: float, prior: BetaPrior) -> tuple[float, float]:
    """The confidence sequence ``(low, high)`` for a rate: it holds the truth at every look with
    probability ``1 - alpha``. ``(0.0, 1.0)`` at ``n = 0``."""
    _check_counts(x, n)
    _check_alpha(alpha)
    if n == 0:
        return (0.0, 1.0)
    level = math.log(1.0 / alpha)
    centre = x / n
    low = 0.0 if log_mixture(x, n, 0.0, prior) < level else _edge(x, n, prior, level, 0.0, centre)
    high = 1.0 if log_mixture(x, n, 1.0, prior) < level else _edge(x, n, prior, level, 1.0, centre)
    return (low, high)


def _edge(x: int, n: int, prior: BetaPrior, level: float, outside: float, inside: float) -> float:
    """Where ``log M`` falls below ``level`` between a rejected and an accepted rate."""
    if log_mixture(x, n, inside, prior) >= level:
        return inside  # the centre itself is rejected only through rounding: a zero-width set
    for _ in range(_HALVINGS):
        middle = (outside + inside) / 2.0
        if log_mixture(x, n, middle, prior) >= level:
            outside = middle
        else:
            inside = middle
    return inside


def _check_alpha(alpha: float) -> None:
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be strictly between 0 and 1, got {alpha}")


# -- quantiles from histograms ---------------------------------------------------------------


def quantile_bounds(
    counts: Mapping[int, int], q: float, alpha: float, prior: BetaPrior
) -> tuple[int, int] | None:
    """Bucket indices ``(low, high)`` bracketing the true ``q``-quantile at every look, each side
    with error at most ``alpha``; None for an empty histogram.

    ``low`` is the first bucket whose upper edge may hold the quantile: every edge below it has a
    count bound saying fewer than ``q`` of samples lie there. ``high`` is the first bucket whose
    edge certainly has at least ``q`` of samples below it (the last bucket when none does).
    """
    if not 0.0 < q < 1.0:
        raise ValueError(f"q must be strictly between 0 and 1, got {q}")
    buckets = sorted(b for b, c in counts.items() if c > 0)
    n = sum(counts[b] for b in buckets)
    if n == 0:
        return None
    level = math.log(1.0 / alpha)
    low: int | None = None
    below = 0
    for index in buckets:
        below += counts[index]
        # One evaluation at q per edge, no bisection: "the CDF here may reach q" is "q is not
        # rejected from above", and "certainly reaches q" is "q is rejected from below".
        reaches = below >= q * n
        rejected = log_mixture(below, n, q, prior) >= level
        if low is None and (reaches or not rejected):
            low = index
        if reaches and rejected:
            return (low if low is not None else index, index)
    return (low if low is not None else buckets[-1], buckets[-1])


# -- means -----------------------------------------------------------------------------------


def normal_mixture_radius(variance: float, alpha: float, tuning: float) -> float:
    """Half-width of the normal-mixture confidence sequence for an estimate of this variance.

    ``tuning`` is the information (1 / variance) at which the bound should be tightest. Infinite
    when the variance is not a positive finite number: callers floor a plug-in variance.
    """
    _check_alpha(alpha)
    if not tuning > 0.0:
        raise ValueError(f"tuning must be positive, got {tuning}")
    if not 0.0 < variance < math.inf:
        return math.inf  # no information yet (or a degenerate plug-in variance): no bound
    information = 1.0 / variance
    spread = (information + tuning) * math.log((information + tuning) / (tuning * alpha * alpha))
    return math.sqrt(spread) / information


def tuning_for(effect: float, alpha: float) -> float:
    """The information at which an effect of this size first clears the bound, roughly."""
    if not effect > 0.0:
        raise ValueError(f"effect must be positive, got {effect}")
    return 2.0 * math.log(1.0 / alpha) / (effect * effect)


# -- sudden regressions ----------------------------------------------------------------------


def spent_level(start: int, alpha: float) -> float:
    """``log(1/alpha_j)`` for a test restarted at window ``start`` (0 = the stage's first)."""
    _check_alpha(alpha)
    if start < 0:
        raise ValueError(f"start must not be negative, got {start}")
    k = start + 1
    return math.log(2.0 * k * (1.0 + math.log(k)) ** 2 / alpha)


@dataclass(frozen=True, slots=True)
class Restart:
    """The restarted test that says most against ``rate``: from which window, over what counts,
    and how its evidence compares with its own threshold (``margin`` >= 0 crosses)."""

    start: int
    successes: int
    trials: int
    evidence: float
    margin: float


def scan(
    windows: Sequence[tuple[int, int, int]], rate: float, alpha: float, prior: BetaPrior
) -> Restart | None:
    """Tests of "the rate is at most ``rate``" restarted at each window boundary.

    ``windows`` are ``(index since the stage began, successes, trials)``, oldest first; each
    restart covers its window and every later one. Only restarts whose observed rate is above
    ``rate`` can speak against it. None when no window has trials.
    """
    best: Restart | None = None
    x = n = 0
    for index, successes, trials in reversed(windows):
        _check_counts(successes, trials)
        x, n = x + successes, n + trials
        if n == 0 or x <= rate * n:
            continue
        evidence = log_mixture(x, n, rate, prior)
        margin = evidence - spent_level(index, alpha)
        if best is None or margin > best.margin:
            best = Restart(index, x, n, evidence, margin)
    return best


# -- sample ratio mismatch -------------------------------------------------------------------


def share_evidence(observed: int, total: int, expected: float, prior_size: float) -> float:
    """Evidence (nats) that an arm's share differs from ``expected``: the beta-binomial mixture
    centred on the expected share, two-sided (a sequential multinomial test for two arms)."""
    if not 0.0 < expected < 1.0:
        return 0.0  # 0% or 100%: one arm only, nothing to compare
    return log_mixture(observed, total, expected, BetaPrior(expected, prior_size))
