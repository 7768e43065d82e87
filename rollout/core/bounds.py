"""What each gate's verdict promises, whatever the number of looks (DESIGN §4.2).

The error rates each verdict controls, over a whole stage and however often it is read:

- ``fail`` on the stage (absolute): a flag whose true error rate is at or below ``critical`` is
  killed with probability at most ``ERROR_ALPHA`` (1%).
- ``fail`` needs the comparison with control as well where control traffic exists: a treatment
  whose true rate is no worse than control's reads "worse" with probability at most
  ``2 * COMPARE_ALPHA`` (each arm's bound errs with at most ``COMPARE_ALPHA``).
- ``fail`` on the window (a sudden regression): at most ``WINDOW_ALPHA`` (0.5%) per stage, for any
  stage length (``sequential.scan``).
- ``latency_ratio`` ``fail``: a treatment whose true p95 is at most ``critical`` times control's is
  killed with probability at most ``2 * LATENCY_ALPHA``.
- ``warn`` stays a per-look bound (z = 1): a false warn only holds a flag, and a true rate between
  warn and critical must never be offered an advance, so warn errs towards holding.
- A sample ratio mismatch is raised on a correct split with probability at most ``SRM_ALPHA`` per
  stage and count (exposures, samples).

The priors say where each test spends its power (``sequential`` explains why this keeps them
valid): error rates at twice ``critical``, where a kill must come within ~150 samples; control's
rate at half of critical; a CDF at the quantile judged; an arm's share tightly around the expected
split, because an instrumentation bug shifts it by a point, not by ten. ``bench/decisions.py``
measures each figure over 10,000 seeded 3-day stages, with the fixed-z rules these replace beside
them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from rollout.core.sequential import (
    BetaPrior,
    Restart,
    log_mixture,
    normal_mixture_radius,
    proportion_bounds,
    quantile_bounds,
    scan,
    share_evidence,
    tuning_for,
)

ERROR_ALPHA = 0.01
COMPARE_ALPHA = 0.005
WINDOW_ALPHA = 0.005
LATENCY_ALPHA = 0.005
VALUE_ALPHA = 0.01
SRM_ALPHA = 0.0002
SRM_PRIOR_SIZE = 5_000.0
PRIOR_SIZE = 50.0
QUANTILE = 0.95


def error_prior(critical: float) -> BetaPrior:
    """Power where it matters: twice the critical rate (halfway to 1 for a critical above 1/3)."""
    centre = 2.0 * critical if critical < 1.0 / 3.0 else (1.0 + critical) / 2.0
    return BetaPrior(min(max(centre, 1e-6), 1.0 - 1e-6), PRIOR_SIZE)


def control_prior(critical: float) -> BetaPrior:
    """Control's bound in a comparison: tight at the low rates a healthy control runs at."""
    return BetaPrior(min(max(critical / 2.0, 1e-6), 0.5), PRIOR_SIZE)


def above(x: int, n: int, rate: float, alpha: float, prior: BetaPrior) -> bool:
    """Has the true rate been shown above ``rate`` (the bound's low end at or past it)?"""
    if n == 0 or x <= rate * n:
        return False
    if rate <= 0.0:
        return True
    return log_mixture(x, n, rate, prior) >= math.log(1.0 / alpha)


def rate_bounds(x: int, n: int, alpha: float, critical: float) -> tuple[float, float]:
    return proportion_bounds(x, n, alpha, error_prior(critical))


@dataclass(frozen=True, slots=True)
class Comparison:
    """Treatment against control on error rate: each arm's bound, and whether they part."""

    treatment_low: float
    control_high: float

    @property
    def worse(self) -> bool:
        return self.treatment_low > self.control_high


def compare(x: int, n: int, cx: int, cn: int, alpha: float, critical: float) -> Comparison:
    return Comparison(
        treatment_low=proportion_bounds(x, n, alpha, error_prior(critical))[0],
        control_high=proportion_bounds(cx, cn, alpha, control_prior(critical))[1],
    )


def regression(windows: list[tuple[int, int, int]], critical: float) -> Restart | None:
    """The restarted test that says most against ``critical`` over the window's look-back."""
    return scan(windows, critical, WINDOW_ALPHA, error_prior(critical))


def restart_alpha(restart: Restart) -> float:
    """The error level a restart was judged at (its share of ``WINDOW_ALPHA``)."""
    return math.exp(-(restart.evidence - restart.margin))


# -- latency ---------------------------------------------------------------------------------

CDF_PRIOR = BetaPrior(QUANTILE, PRIOR_SIZE)


def p95_buckets(counts: dict[int, int], alpha: float) -> tuple[int, int] | None:
    """Bucket indices bracketing the true p95 at every look, each side erring at most ``alpha``."""
    return quantile_bounds(counts, QUANTILE, alpha, CDF_PRIOR)


# -- business values -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Moments:
    """Count, mean and M2 (sum of squared deviations) of one arm's observations."""

    n: int
    mean: float
    m2: float

    @property
    def variance(self) -> float:
        return self.m2 / (self.n - 1) if self.n > 1 else math.inf


@dataclass(frozen=True, slots=True)
class Change:
    """Treatment's mean against control's, with the confidence sequence's ends."""

    value: float
    low: float
    high: float


def mean_change(
    treatment: Moments, control: Moments, *, relative: bool, effect: float, alpha: float
) -> Change | None:
    """``t - c`` or ``(t - c) / |c|`` with bounds valid at every look; None when a relative
    change cannot be read because control's mean cannot be told apart from 0."""
    if treatment.n < 2 or control.n < 2:
        return None
    # A plug-in variance of 0 (identical observations) would claim certainty; floor it.
    var_t = max(treatment.variance, 1e-12 * (1.0 + treatment.mean**2)) / treatment.n
    var_c = max(control.variance, 1e-12 * (1.0 + control.mean**2)) / control.n
    tuning = tuning_for(max(abs(effect), 1e-9), alpha)
    diff = treatment.mean - control.mean
    if not relative:
        radius = normal_mixture_radius(var_t + var_c, alpha, tuning)
        return Change(diff, diff - radius, diff + radius)
    c_radius = normal_mixture_radius(var_c, alpha, tuning_for(abs(control.mean) or 1.0, alpha))
    if abs(control.mean) <= c_radius:
        return None
    scale = abs(control.mean)
    # Delta method for (t - c) / |c|: the variance of the ratio at the observed means.
    variance = var_t / scale**2 + (treatment.mean**2) * var_c / scale**4
    radius = normal_mixture_radius(variance, alpha, tuning)
    value = diff / scale
    return Change(value, value - radius, value + radius)


# -- sample ratio mismatch -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Split:
    """One count (exposures or samples) against the split the percent implies."""

    expected: float  # the treatment's expected share
    observed: float | None
    statistic: float  # evidence in nats; a mismatch at or past log(1/SRM_ALPHA)
    mismatch: bool


def split(treatment: int, control: int, expected: float) -> Split:
    total = treatment + control
    observed = treatment / total if total else None
    evidence = share_evidence(treatment, total, expected, SRM_PRIOR_SIZE) if total else 0.0
    return Split(expected, observed, evidence, evidence >= math.log(1.0 / SRM_ALPHA))
