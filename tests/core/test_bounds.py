"""The gates' policy over the always-valid bounds (core/bounds.py): each helper against known
values and the promises it carries."""

from __future__ import annotations

import math

import pytest

from rollout.core import bounds, sequential


@pytest.mark.parametrize(
    ("x", "n", "shown"),
    [
        (0, 0, False),  # no samples is no evidence
        (10, 100, False),  # exactly at critical
        (12, 100, False),  # above it, but 100 samples cannot tell 12% from 10%
        (21, 100, True),  # the rate the prior was tuned for, after ~100 samples
        (35, 150, True),
        (1_150, 10_000, True),  # 11.5% over 10,000 samples is shown above 10%
        (1_100, 10_000, False),  # 11% is not yet: the power went to twice critical
        (2_400, 20_000, True),  # but every rate above critical is shown in the end
    ],
)
def test_above_critical(x: int, n: int, shown: bool) -> None:
    prior = bounds.error_prior(0.10)
    assert bounds.above(x, n, 0.10, bounds.ERROR_ALPHA, prior) is shown


def test_above_agrees_with_the_bound_it_reports() -> None:
    prior = bounds.error_prior(0.10)
    for x in range(5, 60):
        low, _ = sequential.proportion_bounds(x, 150, bounds.ERROR_ALPHA, prior)
        assert bounds.above(x, 150, 0.10, bounds.ERROR_ALPHA, prior) == (low >= 0.10), x


@pytest.mark.parametrize("critical", [0.001, 0.05, 0.10, 0.33, 0.5, 0.9, 0.999])
def test_error_prior_is_a_valid_beta_for_any_critical(critical: float) -> None:
    prior = bounds.error_prior(critical)
    assert 0 < prior.mean < 1 and prior.mean >= critical
    assert bounds.control_prior(critical).mean <= 0.5


def test_comparison_separates_a_regression_from_a_shared_outage() -> None:
    regression = bounds.compare(30, 150, 12, 1_350, bounds.COMPARE_ALPHA, 0.10)
    shared = bounds.compare(30, 150, 270, 1_350, bounds.COMPARE_ALPHA, 0.10)
    assert regression.worse and not shared.worse
    assert regression.treatment_low < 0.2 < shared.control_high + 0.01


def test_comparison_without_control_never_says_worse() -> None:
    assert not bounds.compare(30, 150, 0, 0, bounds.COMPARE_ALPHA, 0.10).worse


def test_regression_reports_the_restart_and_its_level() -> None:
    windows = [(17_280 + j, 1, 100) for j in range(3)] + [(17_283 + j, 30, 100) for j in range(3)]
    restart = bounds.regression(windows, 0.10)
    assert restart is not None and restart.margin >= 0 and restart.start == 17_283
    alpha = bounds.restart_alpha(restart)
    assert alpha == pytest.approx(math.exp(-sequential.spent_level(17_283, bounds.WINDOW_ALPHA)))
    assert alpha < bounds.WINDOW_ALPHA


def test_p95_buckets_bracket_the_sample_p95() -> None:
    counts = {b: 10 for b in range(40, 80)}  # 400 samples over 40 buckets: p95 in bucket 77
    low, high = bounds.p95_buckets(counts, bounds.LATENCY_ALPHA) or (None, None)
    assert low is not None and high is not None
    assert low <= 77 <= high


@pytest.mark.parametrize(
    ("t", "c", "relative", "expected"),
    [
        (
            bounds.Moments(4_000, 0.9, 0.25 * 3_999),
            bounds.Moments(36_000, 1.0, 0.25 * 35_999),
            True,
            -0.1,
        ),
        (
            bounds.Moments(4_000, 0.1, 0.25 * 3_999),
            bounds.Moments(36_000, 0.0, 0.25 * 35_999),
            False,
            0.1,
        ),
    ],
)
def test_mean_change_reads_the_change_with_a_bound_around_it(
    t: bounds.Moments, c: bounds.Moments, relative: bool, expected: float
) -> None:
    change = bounds.mean_change(t, c, relative=relative, effect=0.05, alpha=bounds.VALUE_ALPHA)
    assert change is not None
    assert change.value == pytest.approx(expected)
    assert change.low < expected < change.high
    assert change.high - change.low < 0.1


def test_mean_change_is_unreadable_until_it_has_two_observations_per_arm() -> None:
    one = bounds.Moments(1, 1.0, 0.0)
    many = bounds.Moments(100, 1.0, 25.0)
    assert bounds.mean_change(one, many, relative=True, effect=0.05, alpha=0.01) is None
    assert bounds.mean_change(many, one, relative=True, effect=0.05, alpha=0.01) is None


def test_a_relative_change_against_a_control_mean_near_zero_is_insufficient() -> None:
    t = bounds.Moments(1_000, 0.1, 250.0)
    c = bounds.Moments(9_000, 0.001, 0.25 * 8_999)
    assert bounds.mean_change(t, c, relative=True, effect=0.05, alpha=0.01) is None
    assert bounds.mean_change(t, c, relative=False, effect=0.05, alpha=0.01) is not None


def test_more_observations_narrow_the_change() -> None:
    widths = []
    for n in (1_000, 10_000, 100_000):
        t = bounds.Moments(n, 0.95, 0.25 * (n - 1))
        c = bounds.Moments(9 * n, 1.0, 0.25 * (9 * n - 1))
        change = bounds.mean_change(t, c, relative=True, effect=0.05, alpha=0.01)
        assert change is not None
        widths.append(change.high - change.low)
    assert widths == sorted(widths, reverse=True)


def test_identical_observations_do_not_claim_certainty() -> None:
    same = bounds.Moments(50, 1.0, 0.0)
    change = bounds.mean_change(same, same, relative=True, effect=0.05, alpha=0.01)
    assert change is not None and change.value == 0.0 and change.high > 0.0


@pytest.mark.parametrize(
    ("treatment", "control", "mismatch"),
    [
        (1_000, 9_000, False),  # the 10% the percent implies
        (1_100, 8_900, False),  # 11% over 10,000 exposures: not yet shown
        (6_600, 53_400, True),  # 11% over 60,000: shown
        (0, 0, False),
    ],
)
def test_split(treatment: int, control: int, mismatch: bool) -> None:
    result = bounds.split(treatment, control, 0.10)
    assert result.mismatch is mismatch
    assert result.expected == 0.10
    if treatment + control:
        assert result.observed == pytest.approx(treatment / (treatment + control))
    else:
        assert result.observed is None and result.statistic == 0.0


def test_split_at_zero_or_full_percent_has_nothing_to_compare() -> None:
    assert not bounds.split(0, 500, 0.0).mismatch
    assert not bounds.split(500, 0, 1.0).mismatch
