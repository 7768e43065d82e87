"""Always-valid bounds (core/sequential.py): known values, monotonicity, edges, no division by 0."""

from __future__ import annotations

import math

import pytest

from rollout.core import sequential as seq

PRIOR = seq.BetaPrior(mean=0.2, size=50)


def _log_mixture_by_integration(x: int, n: int, p: float, prior: seq.BetaPrior) -> float:
    """The mixture's definition, integrated numerically (midpoint rule on a fine grid)."""
    steps = 200_000
    log_norm = seq.log_beta(prior.a, prior.b)
    total = 0.0
    for i in range(steps):
        t = (i + 0.5) / steps
        log_density = (prior.a - 1) * math.log(t) + (prior.b - 1) * math.log1p(-t) - log_norm
        log_ratio = x * (math.log(t) - math.log(p)) + (n - x) * (math.log1p(-t) - math.log1p(-p))
        total += math.exp(log_density + log_ratio)
    return math.log(total / steps)


@pytest.mark.parametrize(
    ("x", "n", "p"), [(0, 1, 0.1), (3, 10, 0.1), (30, 150, 0.1), (5, 200, 0.3)]
)
def test_log_mixture_matches_its_definition(x: int, n: int, p: float) -> None:
    assert seq.log_mixture(x, n, p, PRIOR) == pytest.approx(
        _log_mixture_by_integration(x, n, p, PRIOR), abs=1e-4
    )


def test_log_mixture_known_value() -> None:
    # Beta(1, 1) prior: M = B(x+1, n-x+1) / p^x (1-p)^(n-x); x=1, n=2, p=0.5: (1/6) / (1/4).
    assert seq.log_mixture(1, 2, 0.5, seq.BetaPrior(0.5, 2.0)) == pytest.approx(math.log(4 / 6))


@pytest.mark.parametrize("n", [0, 1])
@pytest.mark.parametrize("p", [0.0, 0.1, 1.0])
def test_no_division_by_zero_at_zero_or_one_sample(n: int, p: float) -> None:
    for x in range(n + 1):
        value = seq.log_mixture(x, n, p, PRIOR)
        assert not math.isnan(value)
        low, high = seq.proportion_bounds(x, n, 0.01, PRIOR)
        assert 0.0 <= low <= high <= 1.0


def test_bounds_at_no_samples_are_everything() -> None:
    assert seq.proportion_bounds(0, 0, 0.01, PRIOR) == (0.0, 1.0)


@pytest.mark.parametrize(("x", "n"), [(0, 10), (1, 10), (20, 100), (100, 100), (9, 1000)])
def test_bounds_contain_the_observed_rate(x: int, n: int) -> None:
    low, high = seq.proportion_bounds(x, n, 0.01, PRIOR)
    assert low <= x / n <= high


@pytest.mark.parametrize("rate", [0.01, 0.1, 0.2, 0.5])
def test_more_evidence_never_widens_the_bound(rate: float) -> None:
    widths = []
    for n in (100, 1_000, 10_000, 100_000):
        low, high = seq.proportion_bounds(round(rate * n), n, 0.01, PRIOR)
        widths.append(high - low)
    assert widths == sorted(widths, reverse=True)
    assert widths[-1] < widths[0] / 10


def test_smaller_alpha_gives_a_wider_bound() -> None:
    loose = seq.proportion_bounds(30, 150, 0.05, PRIOR)
    strict = seq.proportion_bounds(30, 150, 0.001, PRIOR)
    assert strict[0] < loose[0] and strict[1] > loose[1]


def test_low_end_crossing_is_the_mixture_test() -> None:
    # "low >= 10%" must agree with "evidence against 10% >= log(1/alpha)" (both sides of it).
    level = math.log(100)
    for x in range(10, 60):
        low, _ = seq.proportion_bounds(x, 150, 0.01, PRIOR)
        rejects = x / 150 > 0.1 and seq.log_mixture(x, 150, 0.1, PRIOR) >= level
        assert (low >= 0.1) == rejects, x


def test_twenty_percent_of_150_clears_ten_percent() -> None:
    low, high = seq.proportion_bounds(30, 150, 0.01, PRIOR)
    assert 0.1 < low < 0.2 < high


def test_bad_counts_and_alpha_are_refused() -> None:
    with pytest.raises(ValueError):
        seq.proportion_bounds(3, 2, 0.01, PRIOR)
    with pytest.raises(ValueError):
        seq.proportion_bounds(1, 2, 0.0, PRIOR)
    with pytest.raises(ValueError):
        seq.BetaPrior(1.0, 5)


def test_quantile_bounds_bracket_the_sample_quantile() -> None:
    counts = {i: 100 for i in range(100)}  # 10,000 samples spread evenly over 100 buckets
    bounds = seq.quantile_bounds(counts, 0.95, 0.01, seq.BetaPrior(0.95, 50))
    assert bounds is not None
    low, high = bounds
    assert low <= 94 <= high
    assert low >= 90 and high <= 98


def test_quantile_bounds_tighten_with_samples() -> None:
    prior = seq.BetaPrior(0.95, 50)
    few = seq.quantile_bounds({i: 1 for i in range(100)}, 0.95, 0.01, prior)
    many = seq.quantile_bounds({i: 1000 for i in range(100)}, 0.95, 0.01, prior)
    assert few is not None and many is not None
    assert many[1] - many[0] < few[1] - few[0]


def test_quantile_bounds_of_one_sample_and_of_none() -> None:
    prior = seq.BetaPrior(0.95, 50)
    assert seq.quantile_bounds({}, 0.95, 0.01, prior) is None
    assert seq.quantile_bounds({7: 1}, 0.95, 0.01, prior) == (7, 7)


def test_normal_mixture_radius_shrinks_with_information() -> None:
    tuning = seq.tuning_for(0.05, 0.01)
    radii = [seq.normal_mixture_radius(v, 0.01, tuning) for v in (1e-2, 1e-3, 1e-4, 1e-5)]
    assert radii == sorted(radii, reverse=True)
    # Always wider than the fixed-sample bound at the same alpha (the price of any-time validity).
    assert radii[-1] > 2.576 * math.sqrt(1e-5)


@pytest.mark.parametrize("variance", [0.0, -1.0, math.inf, math.nan])
def test_normal_mixture_radius_without_information_is_infinite(variance: float) -> None:
    assert seq.normal_mixture_radius(variance, 0.01, 10.0) == math.inf


def test_spending_sums_below_alpha() -> None:
    alpha = 0.005
    spent = sum(math.exp(-seq.spent_level(j, alpha)) for j in range(1_000_000))
    assert spent < alpha
    assert seq.spent_level(17_280, alpha) == pytest.approx(20.5, abs=0.1)


def test_spent_level_grows_with_the_start() -> None:
    levels = [seq.spent_level(j, 0.01) for j in (0, 10, 1_000, 100_000)]
    assert levels == sorted(levels)


def test_scan_finds_a_recent_regression_the_stage_would_miss() -> None:
    healthy = [(j, 1, 100) for j in range(17_000, 17_280)]  # 48 h in, 1% for 280 windows
    regressed = [(17_280 + j, 30, 100) for j in range(3)]  # then 30% for three windows
    windows = healthy[-3:] + regressed
    restart = seq.scan(windows, 0.1, 0.005, PRIOR)
    assert restart is not None and restart.margin >= 0
    assert restart.start == 17_280 and (restart.successes, restart.trials) == (90, 300)
    assert seq.scan(healthy[-6:], 0.1, 0.005, PRIOR) is None  # nothing above 10% anywhere


def test_scan_of_empty_windows() -> None:
    assert seq.scan([], 0.1, 0.01, PRIOR) is None
    assert seq.scan([(0, 0, 0), (1, 0, 0)], 0.1, 0.01, PRIOR) is None


def test_share_evidence_is_zero_at_the_expected_share_and_grows_away_from_it() -> None:
    at = seq.share_evidence(1_000, 10_000, 0.1, 5_000)
    off = seq.share_evidence(1_100, 10_000, 0.1, 5_000)
    far = seq.share_evidence(1_300, 10_000, 0.1, 5_000)
    assert at < 0 < off < far
    assert seq.share_evidence(10, 10, 1.0, 5_000) == 0.0
