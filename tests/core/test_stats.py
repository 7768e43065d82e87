from __future__ import annotations

import math
from statistics import NormalDist

import pytest

from rollout.core import histogram, stats


def normal_sf(z: float) -> float:
    """P(Z >= z) for a standard normal Z: the nominal one-sided error of a bound at z."""
    return 1 - NormalDist().cdf(z)


def binomial_pmf(k: int, n: int, p: float) -> float:
    # In logs: comb(5000, k) overflows a float.
    log = math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1)
    return math.exp(log + k * math.log(p) + (n - k) * math.log1p(-p))


@pytest.mark.parametrize(
    ("successes", "n", "z", "low", "high"),
    [
        # Closed forms: at 0 successes high = z²/(n+z²); at p=1/2 the interval is symmetric.
        pytest.param(0, 10, 1.96, 0.0, 1.96**2 / (10 + 1.96**2), id="zero-successes"),
        pytest.param(10, 10, 1.96, 10 / (10 + 1.96**2), 1.0, id="all-successes"),
        pytest.param(5, 10, 1.96, 0.236590, 0.763410, id="half"),
        pytest.param(20, 100, 0.0, 0.2, 0.2, id="z0-is-the-observed-rate"),
        pytest.param(0, 0, 2.0, 0.0, 1.0, id="no-samples-no-knowledge"),
    ],
)
def test_wilson_interval_known_values(
    successes: int, n: int, z: float, low: float, high: float
) -> None:
    assert stats.wilson_interval(successes, n, z) == pytest.approx((low, high), abs=1e-6)


@pytest.mark.parametrize(
    ("successes", "n", "z"),
    [
        pytest.param(-1, 10, 1.0, id="negative-successes"),
        pytest.param(11, 10, 1.0, id="more-successes-than-n"),
        pytest.param(1, 10, -1.0, id="negative-z"),
    ],
)
def test_wilson_interval_refuses_nonsense(successes: int, n: int, z: float) -> None:
    with pytest.raises(ValueError):
        stats.wilson_interval(successes, n, z)


@pytest.mark.parametrize(
    ("n", "p", "z"),
    [
        pytest.param(100, 0.10, 2.5, id="n100-p10"),
        pytest.param(200, 0.10, 2.326, id="n200-p10"),
        pytest.param(1000, 0.05, 1.0, id="n1000-p5"),
        pytest.param(150, 0.02, 2.5, id="rare-events"),
    ],
)
def test_wilson_lower_bound_keeps_its_one_sided_coverage(n: int, p: float, z: float) -> None:
    """Exactly: how often is the lower bound above the true rate? Wilson's lower end is known to
    be somewhat liberal at small rates (discreteness), up to about twice its nominal alpha; the
    gate's z values were tuned by simulation with that included. Far more would be a bug."""
    above = sum(
        binomial_pmf(k, n, p) for k in range(n + 1) if stats.wilson_interval(k, n, z)[0] > p
    )
    assert above <= 2.0 * normal_sf(z)


@pytest.mark.parametrize(
    ("xt", "nt", "xc", "nc", "expected"),
    [
        # pooled 29/1000: se = sqrt(.029 * .971 * (1/100 + 1/900)); diff .19
        pytest.param(20, 100, 9, 900, 0.19 / math.sqrt(0.029 * 0.971 * (1 / 100 + 1 / 900)),
                     id="20pct-vs-1pct"),
        pytest.param(150, 1000, 1350, 9000, 0.0, id="same-rate-shared-outage"),
        pytest.param(0, 100, 0, 900, 0.0, id="no-errors-anywhere"),
        pytest.param(100, 100, 900, 900, 0.0, id="all-errors-everywhere"),
        pytest.param(5, 100, 0, 0, 0.0, id="empty-control"),
    ],
)  # fmt: skip
def test_two_proportion_z(xt: int, nt: int, xc: int, nc: int, expected: float) -> None:
    assert stats.two_proportion_z(xt, nt, xc, nc) == pytest.approx(expected, abs=1e-9)


def test_two_proportion_z_is_negative_when_treatment_is_better() -> None:
    assert stats.two_proportion_z(1, 1000, 90, 9000) < -2


@pytest.mark.parametrize(
    ("n", "q", "z", "expected"),
    [
        pytest.param(100, 0.95, 1.0, (92, 99), id="p95-n100-z1"),
        pytest.param(100, 0.95, 2.5, (89, 100), id="upper-rank-clamped-to-max"),
        pytest.param(1, 0.95, 2.5, (1, 1), id="single-sample"),
        pytest.param(10_000, 0.95, 0.0, (9500, 9501), id="z0-brackets-the-point"),
    ],
)
def test_quantile_rank_bounds(n: int, q: float, z: float, expected: tuple[int, int]) -> None:
    assert stats.quantile_rank_bounds(n, q, z) == expected


@pytest.mark.parametrize("n", [200, 1000, 5000])
def test_quantile_rank_bounds_hold_their_confidence(n: int) -> None:
    """Samples below the true p95 ~ Binomial(n, .95): X(low) ≤ p95 iff that count ≥ low."""
    z = 2.0
    low, high = stats.quantile_rank_bounds(n, 0.95, z)
    below_ok = sum(binomial_pmf(k, n, 0.95) for k in range(low, n + 1))
    above_ok = sum(binomial_pmf(k, n, 0.95) for k in range(0, high))
    nominal = 1 - normal_sf(z)
    assert below_ok >= nominal - 0.01
    assert above_ok >= nominal - 0.01


def test_quantile_rank_bounds_refuse_nonsense() -> None:
    with pytest.raises(ValueError):
        stats.quantile_rank_bounds(0, 0.95, 1.0)
    with pytest.raises(ValueError):
        stats.quantile_rank_bounds(10, 1.0, 1.0)


def test_quantile_bounds_from_a_histogram() -> None:
    counts: dict[int, int] = {}
    for ms in range(1, 1001):
        i = histogram.bucket_index(ms / 10)
        counts[i] = counts.get(i, 0) + 1
    bounds = stats.quantile_bounds(counts, 0.95, 2.0)
    assert bounds is not None
    assert bounds.low <= bounds.point <= bounds.high
    assert bounds.low < bounds.high
    assert bounds.samples == 1000
    assert histogram.bucket_upper_ms(bounds.point) == histogram.percentile(counts, 0.95)
    assert stats.quantile_bounds({}, 0.95, 2.0) is None


def test_quantile_bounds_collapse_when_every_sample_is_in_one_bucket() -> None:
    bounds = stats.quantile_bounds({40: 500}, 0.95, 3.0)
    assert bounds is not None
    assert (bounds.low, bounds.point, bounds.high) == (40, 40, 40)


def test_bucket_ratio_and_value() -> None:
    assert stats.bucket_ratio(62, 54) == 2.0  # eight buckets are one doubling, exactly
    assert stats.bucket_ratio(54, 62) == 0.5
    assert stats.bucket_ratio(57, 57) == 1.0
    assert stats.bucket_value_ms(10) == histogram.bucket_upper_ms(10)
    overflow = stats.bucket_value_ms(histogram.OVERFLOW)
    assert overflow == pytest.approx(histogram.bucket_upper_ms(histogram.LAST) * histogram.GROWTH)
