from __future__ import annotations

import math

import pytest

from rollout.core import histogram as h


def samples_to_counts(durations: list[float]) -> dict[int, int]:
    counts: dict[int, int] = {}
    for d in durations:
        counts[h.bucket_index(d)] = counts.get(h.bucket_index(d), 0) + 1
    return counts


def test_layout_spans_a_tenth_of_a_millisecond_to_ten_minutes() -> None:
    assert h.bucket_upper_ms(0) == pytest.approx(0.1)
    assert h.bucket_upper_ms(h.LAST - 1) < 600_000 <= h.bucket_upper_ms(h.LAST)
    assert h.bucket_upper_ms(h.OVERFLOW) == math.inf
    assert abs(h.RESOLUTION - (2 ** (1 / 8) - 1)) < 1e-12
    assert 0.09 < h.RESOLUTION < 0.091


@pytest.mark.parametrize(
    ("duration_ms", "expected"),
    [
        pytest.param(-5.0, 0, id="negative-clock-skew"),
        pytest.param(0.0, 0, id="zero"),
        pytest.param(0.1, 0, id="first-upper-bound-inclusive"),
        pytest.param(0.1000001, 1, id="just-above-first"),
        pytest.param(0.2, 8, id="one-doubling-is-8-buckets"),
        pytest.param(0.2000001, 9, id="just-above-a-doubling"),
        pytest.param(1.0, 27, id="1ms"),
        pytest.param(10.0, 54, id="10ms"),
        pytest.param(600_000.0, h.LAST, id="ten-minutes"),
        pytest.param(700_000.0, h.OVERFLOW, id="past-the-last-bucket"),
        pytest.param(math.inf, h.OVERFLOW, id="infinity"),
        pytest.param(math.nan, h.OVERFLOW, id="nan-counts-as-off-scale"),
    ],
)
def test_bucket_index(duration_ms: float, expected: int) -> None:
    assert h.bucket_index(duration_ms) == expected


def test_every_duration_lies_in_its_bucket_within_the_stated_resolution() -> None:
    d = 0.1003
    while d < 600_000:
        i = h.bucket_index(d)
        below = h.bucket_upper_ms(i - 1) if i > 0 else 0.0  # a bucket starts where one ends
        assert below < d <= h.bucket_upper_ms(i)
        assert h.bucket_upper_ms(i) / d < 1 + h.RESOLUTION + 1e-12
        d *= 1.0137  # not a multiple of the growth factor, so positions inside buckets vary


@pytest.mark.parametrize("index", [-1, h.OVERFLOW + 1])
def test_bucket_bounds_refuse_unknown_indices(index: int) -> None:
    with pytest.raises(ValueError):
        h.bucket_upper_ms(index)


@pytest.mark.parametrize(
    ("q", "rank"),
    [
        pytest.param(0.0, 1, id="q0-is-the-minimum"),
        pytest.param(0.5, 50, id="p50"),
        pytest.param(0.95, 95, id="p95-nearest-rank"),
        pytest.param(0.99, 99, id="p99"),
        pytest.param(1.0, 100, id="q1-is-the-maximum"),
    ],
)
def test_percentile_is_the_upper_bound_of_the_nearest_rank_bucket(q: float, rank: int) -> None:
    durations = [float(ms) for ms in range(1, 101)]  # the k-th smallest is k ms
    result = h.percentile(samples_to_counts(durations), q)
    assert result == h.bucket_upper_ms(h.bucket_index(float(rank)))
    assert rank <= result < rank * (1 + h.RESOLUTION)


def test_percentile_of_an_empty_histogram_is_none() -> None:
    assert h.percentile({}, 0.95) is None
    assert h.percentile({3: 0}, 0.95) is None


@pytest.mark.parametrize("q", [-0.01, 1.01])
def test_percentile_refuses_q_outside_0_1(q: float) -> None:
    with pytest.raises(ValueError):
        h.percentile({1: 1}, q)


def test_merging_windows_equals_bucketing_all_samples_at_once() -> None:
    first = [0.5 * 1.07**k for k in range(120)]
    second = [3.0 * 1.11**k for k in range(80)]
    merged = h.merge([samples_to_counts(first), samples_to_counts(second)])
    assert merged == samples_to_counts(first + second)
    assert h.total(merged) == 200
    for q in (0.5, 0.95, 0.99):
        assert h.percentile(merged, q) == h.percentile(samples_to_counts(first + second), q)


def test_merge_drops_empty_buckets_and_total_ignores_them() -> None:
    assert h.merge([{1: 2, 5: 0}, {1: 3, 7: 1}]) == {1: 5, 7: 1}
    assert h.total({1: 2, 5: 0, 6: -1}) == 2


def test_bucket_at_rank() -> None:
    counts = {10: 3, 2: 1, 40: 1}
    assert [h.bucket_at_rank(counts, r) for r in range(1, 6)] == [2, 10, 10, 10, 40]
    assert h.bucket_at_rank(counts, 6) is None
    with pytest.raises(ValueError):
        h.bucket_at_rank(counts, 0)
